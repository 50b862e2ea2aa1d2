"""The extension's `vertex_normals` kernel: DECA's vertex normals, bit-identical to the torch path."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from _support.torch_threads import equal_on_thread_counts

from decaenv.runtime import mesh


def _dense_faces(size: int = 96) -> torch.Tensor:
    """DECA's UV-grid triangulation, the faces touching a disk (what the detail normals use)."""
    faces = torch.from_numpy(mesh.generate_triangles(size, size))
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    inside = (((yy - size // 2) ** 2 + (xx - size // 2) ** 2) < (size // 3) ** 2).reshape(-1)
    return faces[inside[faces].any(dim=1)]


@pytest.mark.parametrize("case", ["dense-grid", "random"])
def test_kernel_normals_are_bit_identical_to_torch(built_extension, case):
    generator = torch.Generator().manual_seed(1)
    if case == "dense-grid":
        faces = _dense_faces()
        vertices = torch.randn(4, 96 * 96, 3, generator=generator)
    else:  # repeated, degenerate and unused vertices; sums below F.normalize's eps
        faces = torch.randint(0, 150, (700, 3), generator=generator)
        vertices = torch.randn(3, 160, 3, generator=generator) * 100
        vertices[1] *= 1e-5
    op = torch.ops.decaenv.vertex_normals
    expected = mesh._torch_normals(vertices, faces)
    assert equal_on_thread_counts(lambda: op(vertices, faces), expected)
    if case == "random":  # vertices 150-159 are in no face
        assert torch.equal(op(vertices, faces)[:, 150:], torch.zeros(3, 10, 3))
        assert bool((expected[1].norm(dim=1) < 0.5).any())  # the eps clamp mattered


def test_vertex_normals_use_the_kernel_only_where_it_applies(built_extension, monkeypatch):
    faces = _dense_faces(32)
    vertices = torch.randn(2, 32 * 32, 3)
    assert mesh._compiled_normals(vertices, faces) is not None
    calls = []
    real = mesh._torch_normals
    monkeypatch.setattr(mesh, "_torch_normals", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        fast = mesh.vertex_normals(vertices, faces)
    assert not calls  # the kernel computed them
    assert mesh._compiled_normals(vertices.double(), faces) is None
    assert mesh._compiled_normals(vertices.requires_grad_(), faces) is None
    with torch.no_grad():
        assert mesh._compiled_normals(vertices, faces) is not None
    monkeypatch.setitem(mesh._KERNEL_AGREES, "agrees", False)  # a platform whose torch rounds otherwise
    assert mesh._compiled_normals(vertices, faces) is None
    with torch.no_grad():
        assert torch.equal(mesh.vertex_normals(vertices, faces), fast) and calls


def test_kernel_rejects_bad_face_indices(built_extension):
    with pytest.raises(RuntimeError, match=r"face index 5 outside \[0, 5\)"):
        torch.ops.decaenv.vertex_normals(torch.zeros(1, 5, 3), torch.tensor([[0, 1, 5]]))

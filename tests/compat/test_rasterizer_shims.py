"""The `standard-rasterizer` shim (DECA's standard_rasterize_cuda module) and the `pytorch3d-stand-in` shim."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from decaenv import patches  # noqa: E402
from decaenv.patches import pytorch3d_stand_in, registry, standard_rasterizer  # noqa: E402
from decaenv.patches._p3d_surface import Meshes, load_obj, rasterize_meshes  # noqa: E402


# -- a transcription of DECA's standard rasterizer, from its documented semantics (deca-spec §6.2) -------------

def deca_standard_reference(fv: np.ndarray, depth: np.ndarray, tri: np.ndarray, bary: np.ndarray, h: int, w: int):
    """Per face, per integer pixel of its clipped bounding box: w = (1-u-v, v, u) from the dot-product form,
    covered when w0 > 0, w1 >= 0, w2 >= 0; depth 1 / sum(w_k / z_k); written when <= the stored depth."""
    for b in range(fv.shape[0]):
        for f in range(fv.shape[1]):
            (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = fv[b, f].astype(np.float64)
            xmin, xmax = max(int(np.ceil(min(x0, x1, x2))), 0), min(int(np.floor(max(x0, x1, x2))), w - 1)
            ymin, ymax = max(int(np.ceil(min(y0, y1, y2))), 0), min(int(np.floor(max(y0, y1, y2))), h - 1)
            e0, e1 = np.array([x2 - x0, y2 - y0]), np.array([x1 - x0, y1 - y0])
            d00, d01, d11 = e0 @ e0, e0 @ e1, e1 @ e1
            den = d00 * d11 - d01 * d01
            inv = 0.0 if den == 0 else 1.0 / den
            for y in range(ymin, ymax + 1):
                for x in range(xmin, xmax + 1):
                    e2 = np.array([x - x0, y - y0])
                    u = (d11 * (e0 @ e2) - d01 * (e1 @ e2)) * inv
                    v = (d00 * (e1 @ e2) - d01 * (e0 @ e2)) * inv
                    wts = (1 - u - v, v, u)
                    if not (wts[0] > 0 and wts[1] >= 0 and wts[2] >= 0):
                        continue
                    zp = 1.0 / (wts[0] / z0 + wts[1] / z1 + wts[2] / z2)
                    if zp <= depth[b, y, x]:
                        depth[b, y, x], tri[b, y, x], bary[b, y, x] = zp, f, wts


def _buffers(b, h, w, dtype=torch.float32):
    return (torch.full((b, h, w), 1e6, dtype=dtype), torch.full((b, h, w), -1, dtype=torch.int32),
            torch.zeros(b, h, w, 3, dtype=dtype))


def _layered_faces(seed: int, b: int = 2, n: int = 12, h: int = 24, w: int = 32) -> torch.Tensor:
    """Random triangles in pixel units, each at its own constant depth (harmonic = linear depth, no ties),
    vertices off the integer grid (no pixel centre exactly on an edge)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-4, [w + 3, h + 3], size=(b, n, 3, 2)) + 0.01234
    z = rng.permutation(np.arange(1, b * n + 1)).reshape(b, n, 1, 1).repeat(3, axis=2) * 0.37 + 5
    return torch.tensor(np.concatenate([xy, z], -1), dtype=torch.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_standard_rasterize_equals_decas_kernel(seed):
    h, w = 24, 32
    fv = _layered_faces(seed, h=h, w=w)
    depth, tri, bary = _buffers(2, h, w)
    out = standard_rasterizer.standard_rasterize(fv, depth, tri, bary, h, w)
    assert out[0] is depth and out[1] is tri and out[2] is bary
    ref = [x.numpy().astype(np.float64) for x in _buffers(2, h, w)]
    deca_standard_reference(fv.numpy(), ref[0], ref[1], ref[2], h, w)
    assert (tri.numpy() == ref[1]).all()
    assert (tri >= 0).sum() > 100
    np.testing.assert_allclose(depth.numpy(), ref[0], rtol=1e-5)  # float32 vs this float64 transcription
    np.testing.assert_allclose(bary.numpy(), ref[2], atol=1e-5)


def test_depth_buffer_is_read_as_well_as_written():
    """Pixels whose stored depth is nearer than the face keep their buffers (DECA's in/out semantics)."""
    h, w = 24, 32
    fv = _layered_faces(3, b=1, h=h, w=w)
    depth, tri, bary = _buffers(1, h, w)
    depth[:, :, : w // 2] = 0.5  # nearer than every face
    tri[:, :, : w // 2] = 7
    standard_rasterizer.standard_rasterize(fv, depth, tri, bary, h, w)
    assert (tri[:, :, : w // 2] == 7).all() and (depth[:, :, : w // 2] == 0.5).all()
    assert (tri[:, :, w // 2:] >= 0).any()


def test_float64_buffers_and_grad_inputs():
    h, w = 24, 32
    fv = _layered_faces(4, b=1, h=h, w=w).double().requires_grad_()
    depth, tri, bary = _buffers(1, h, w, torch.float64)
    standard_rasterizer.standard_rasterize(fv, depth, tri, bary, h, w)  # DECA's demo_transfer: outside no_grad
    assert bary.dtype == torch.float64 and (tri >= 0).any()


def test_standard_rasterize_colors_culls_back_faces():
    h, w = 16, 16
    front = torch.tensor([[[2.2, 2.3, 5.0], [2.1, 13.2, 5.0], [13.4, 2.2, 5.0]]])  # DECA's front-side test holds
    back = front[:, [0, 2, 1]]
    for faces, expect in ((front, True), (back, False)):
        colors = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]]).expand(1, 1, 3, 3)
        depth, tri, _ = _buffers(1, h, w)
        images = torch.zeros(1, h, w, 3)
        standard_rasterizer.standard_rasterize_colors(faces[None], colors, depth, tri, images, h, w)
        assert bool((tri >= 0).any()) is expect
        if expect:
            covered = tri[0] >= 0
            assert torch.allclose(images[0][covered].sum(-1), torch.ones(int(covered.sum())), atol=1e-5)


def test_bad_buffers_are_one_clear_error():
    fv = _layered_faces(0, b=1)
    depth, tri, bary = _buffers(1, 10, 10)
    with pytest.raises(ValueError, match=r"depth_buffer must be \(1, 24, 32\)"):
        standard_rasterizer.standard_rasterize(fv, depth, tri, bary, 24, 32)


def test_jit_load_of_the_rasterizer_is_intercepted(monkeypatch):
    import torch.utils.cpp_extension as cpp_extension

    calls = []
    monkeypatch.setattr(cpp_extension, "load", lambda name, *a, **k: calls.append(name) or "built")
    with patches.active("standard-rasterizer"):
        mod = cpp_extension.load(name="standard_rasterize_cuda", sources=["missing.cpp", "missing.cu"],
                                 extra_cuda_cflags=["-std=c++14", "-ccbin=$$(which gcc-7)"])
        from standard_rasterize_cuda import standard_rasterize  # what DECA does right after

        assert standard_rasterize is mod.standard_rasterize is standard_rasterizer.standard_rasterize
        assert cpp_extension.load(name="other_ext", sources=[]) == "built"
    assert calls == ["other_ext"] and "standard_rasterize_cuda" not in sys.modules
    assert cpp_extension.load(name="standard_rasterize_cuda", sources=[]) == "built"


def test_compiled_backend_unreachable_means_torch(monkeypatch):
    """In an interpreter without decaenv's dependencies (platformdirs), the pure-PyTorch backend is used."""
    from decaenv.runtime.rasterizer import backends

    def no_platformdirs(name, device_type):
        raise ImportError("No module named 'platformdirs'")

    monkeypatch.setattr(backends, "availability", no_platformdirs)
    assert standard_rasterizer._backend_for(torch.device("cpu")) == "torch"


# -- pytorch3d stand-in -----------------------------------------------------------------------------------------

def test_stand_in_registers_only_without_pytorch3d(monkeypatch):
    for name in pytorch3d_stand_in.EXPORTS:
        monkeypatch.delitem(sys.modules, name, raising=False)
    with patches.active("pytorch3d-stand-in", force=True) as applied:
        assert applied == ["pytorch3d-stand-in"]
        from pytorch3d.io import load_obj as imported_load_obj
        from pytorch3d.renderer.mesh import rasterize_meshes as fn
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes as fn2
        from pytorch3d.structures import Meshes as imported

        assert imported is Meshes and fn is fn2 is rasterize_meshes and imported_load_obj is load_obj
        with pytest.raises(AttributeError, match="stand-in has only Meshes"):
            importlib.import_module("pytorch3d.renderer").MeshRenderer
    assert "pytorch3d" not in sys.modules
    status = registry.status(registry.get("pytorch3d-stand-in"), patches.Environment({"pytorch3d": "0.7.8"}))
    assert status.state == "not needed"


def test_meshes_packed_and_padded():
    verts = [torch.rand(4, 3), torch.rand(3, 3)]
    faces = [torch.tensor([[0, 1, 2], [1, 2, 3]]), torch.tensor([[0, 1, 2]])]
    m = Meshes(verts=verts, faces=faces)
    assert m.faces_packed().tolist() == [[0, 1, 2], [1, 2, 3], [4, 5, 6]]
    assert m.mesh_to_faces_packed_first_idx().tolist() == [0, 2]
    assert m.faces_padded()[1, 1].tolist() == [-1, -1, -1]
    padded = Meshes(verts=m.verts_padded(), faces=m.faces_padded())
    assert padded.num_faces_per_mesh().tolist() == [2, 1]
    with pytest.raises(ValueError, match="face indices"):
        Meshes(verts=[torch.rand(3, 3)], faces=[torch.tensor([[0, 1, 3]])])


def test_rasterize_meshes_follows_pytorch3d_conventions():
    """+X is left and +Y up in pytorch3d's NDC; face indices are packed; -1 fills empty pixels."""
    left_top = torch.tensor([[0.1, 0.1, 1.0], [0.95, 0.1, 1.0], [0.1, 0.95, 1.0]])  # x > 0, y > 0: left, top
    verts = torch.stack([left_top, left_top * torch.tensor([-1.0, -1.0, 1.0])])  # mesh 1: right, bottom
    faces = torch.tensor([[[0, 1, 2]], [[0, 1, 2]]])
    p2f, zbuf, bary, dists = rasterize_meshes(Meshes(verts=verts, faces=faces), image_size=16, blur_radius=0.0,
                                              faces_per_pixel=1, bin_size=None, max_faces_per_bin=None,
                                              perspective_correct=False)
    assert p2f.shape == (2, 16, 16, 1) and bary.shape == (2, 16, 16, 1, 3) and dists.shape == zbuf.shape
    rows, cols = torch.nonzero(p2f[0, ..., 0] >= 0, as_tuple=True)
    assert rows.max() < 8 and cols.max() < 8  # top-left quarter
    rows, cols = torch.nonzero(p2f[1, ..., 0] >= 0, as_tuple=True)
    assert rows.min() >= 8 and cols.min() >= 8 and set(p2f[1].unique().tolist()) == {-1, 1}  # packed index 1
    empty = p2f[..., 0] < 0
    assert (zbuf[..., 0][empty] == -1).all() and (bary[..., 0, :][empty] == -1).all()
    assert (dists[..., 0][empty] == -1).all()
    covered = ~empty
    assert torch.allclose(zbuf[..., 0][covered], torch.ones(int(covered.sum())))
    assert (dists[..., 0][covered] < 0).all() and torch.allclose(bary[..., 0, :][covered].sum(-1),
                                                                 torch.ones(int(covered.sum())))


def test_rasterize_meshes_refuses_what_it_does_not_implement():
    m = Meshes(verts=[torch.rand(3, 3)], faces=[torch.tensor([[0, 1, 2]])])
    with pytest.raises(ValueError, match="faces_per_pixel=8 is not supported"):
        rasterize_meshes(m, image_size=8)
    with pytest.raises(ValueError, match="blur_radius"):
        rasterize_meshes(m, image_size=8, faces_per_pixel=1, blur_radius=0.1)


def test_load_obj_like_pytorch3d(tmp_path):
    path = tmp_path / "m.obj"
    path.write_text("mtllib x.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\n"
                    "f 1/1 2/2 3/3\nf -4/-3 -2/-1 -1\n")
    verts, faces, aux = load_obj(str(path))
    assert verts.dtype == torch.float32 and verts.shape == (4, 3)
    assert faces.verts_idx.tolist() == [[0, 1, 2], [0, 2, 3]]
    assert faces.textures_idx.tolist() == [[0, 1, 2], [0, 2, -1]]
    assert faces.normals_idx.shape == (0, 3) and aux.normals is None and aux.verts_uvs.shape == (3, 2)
    quad = tmp_path / "q.obj"
    quad.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\n")
    assert load_obj(quad)[1].verts_idx.tolist() == [[0, 1, 2], [0, 2, 3]]  # a fan, like pytorch3d
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match="line 2: index 2 out of range"):
        load_obj(bad)


def test_load_obj_reads_decas_template_like_decaenv(shared_assets):
    from decaenv.meshio import read_obj

    path = shared_assets / "deca-data" / "head_template.obj"
    verts, faces, aux = load_obj(path)
    mesh = read_obj(path)
    np.testing.assert_allclose(verts.numpy(), mesh.v, rtol=1e-6)
    assert (faces.verts_idx.numpy() == mesh.f).all() and (faces.textures_idx.numpy() == mesh.ft).all()
    np.testing.assert_allclose(aux.verts_uvs.numpy(), mesh.vt, rtol=1e-6)


def test_backend_follows_the_tensors_device(monkeypatch):
    """CPU tensors -> decaenv's cpu kernel, CUDA tensors -> its cuda kernel, when that kernel is built."""
    from decaenv.runtime.rasterizer import backends

    seen = []
    monkeypatch.setattr(backends, "availability", lambda name, kind: seen.append((name, kind)) or (True, "built"))
    assert standard_rasterizer._backend_for(torch.device("cpu")) == "cpu"
    assert standard_rasterizer._backend_for(torch.device("cuda", 0)) == "cuda"
    assert seen == [("cpu", "cpu"), ("cuda", "cuda")]
    monkeypatch.setattr(backends, "availability", lambda name, kind: (False, "not built"))
    assert standard_rasterizer._backend_for(torch.device("cuda", 0)) == "torch"

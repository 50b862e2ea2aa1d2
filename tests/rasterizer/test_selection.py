"""Backend registry, `choose_backend` and its notice, and the pytorch3d adapter (against a fake pytorch3d)."""

from __future__ import annotations

import logging
import sys
import types

import pytest

torch = pytest.importorskip("torch")

from decaenv.errors import BuildError, UsageError
from decaenv.runtime.rasterizer import available_backends, backends, choose_backend, extension, rasterize
from decaenv.runtime.rasterizer.api import _ndc_centres, pixel_centres, prepare_face_vertices
from decaenv.runtime.rasterizer.reference import rasterize_reference
from decaenv.runtime.rasterizer.verify import compare, random_face_vertices


@pytest.fixture
def world(monkeypatch):
    """Control what is 'built' and whether pytorch3d imports, without touching the real process state."""
    state = {"cpu": False, "cuda": False, "p3d": False}

    def kernel_for(device_type):
        built = state[device_type]
        return built, f"{device_type} extension loaded from /x" if built else "not built (run `decaenv build`)"

    monkeypatch.setattr(extension, "kernel_for", kernel_for)
    monkeypatch.setattr(
        backends,
        "pytorch3d_importable",
        lambda: (state["p3d"], "pytorch3d is importable" if state["p3d"] else "No module named 'pytorch3d'"),
    )
    backends.reset_announcements()
    yield state
    backends.reset_announcements()


def test_auto_prefers_the_compiled_kernel_of_the_device(world):
    world.update(cpu=True, cuda=True, p3d=True)
    assert choose_backend("cpu").name == "cpu"
    assert choose_backend(torch.device("cuda", 0)).name == "cuda"
    assert "cuda extension loaded" in choose_backend("cuda").reason


def test_auto_falls_back_to_pytorch3d_then_torch(world):
    world.update(p3d=True)
    choice = choose_backend("cpu")
    assert choice.name == "pytorch3d" and "not built" in choice.reason
    world.update(p3d=False)
    choice = choose_backend("cuda")
    assert choice.name == "torch"
    assert "decaenv build" in choice.reason and "pytorch3d not installed" in choice.reason


def test_available_backends_lists_the_usable_ones_best_first(world):
    assert available_backends("cpu") == ["torch", "reference"]
    world.update(cpu=True, p3d=True)
    assert available_backends("cpu") == ["cpu", "pytorch3d", "torch", "reference"]
    assert available_backends("cuda") == ["pytorch3d", "torch", "reference"]
    assert available_backends() == ["cpu", "pytorch3d", "torch", "reference"]


def test_explicit_requests_that_cannot_work_are_clear_errors(world):
    with pytest.raises(BuildError, match="cpu rasterizer extension is not available") as info:
        choose_backend("cpu", "cpu")
    assert "decaenv build --cpu" in info.value.hint
    with pytest.raises(UsageError, match="takes CUDA tensors, these are on cpu"):
        choose_backend("cpu", "cuda")
    with pytest.raises(UsageError, match="No module named 'pytorch3d'"):
        choose_backend("cpu", "pytorch3d")
    with pytest.raises(UsageError, match="unknown rasterizer backend"):
        choose_backend("cpu", "opengl")
    assert choose_backend("cpu", "reference").name == "reference"


def test_the_automatic_choice_is_announced_once(world, caplog):
    fv = random_face_vertices(20, seed=1)
    with caplog.at_level(logging.INFO, logger="decaenv"):
        for _ in range(3):
            assert rasterize(fv, 8, 8).backend == "torch"
        rasterize(fv, 8, 8, backend="reference")
    notices = [r for r in caplog.records if "using the torch backend" in r.getMessage()]
    assert len(notices) == 1 and notices[0].levelno == logging.WARNING
    assert "\n" not in notices[0].getMessage()
    assert "the crop warp, PNG decoding and MTCNN run without their compiled kernels" in notices[0].getMessage()


def test_the_notice_names_the_input_side_only_when_the_cpu_extension_is_missing(world, caplog):
    world["cpu"] = True  # a CUDA device without the CUDA build: the CPU kernels are loaded
    with caplog.at_level(logging.INFO, logger="decaenv"):
        backends.get_backend("auto", torch.device("cuda"))
    notices = [r.getMessage() for r in caplog.records if "rasterizer: using" in r.getMessage()]
    assert len(notices) == 1 and "crop warp" not in notices[0], notices


def _fake_pytorch3d(monkeypatch):
    """A stand-in for pytorch3d with its conventions: +x left, +y up, packed face indices, -1 padding.

    Its pixel centres are pytorch3d's own (mirrored index), computed independently of the adapter.
    """
    calls = {}

    class Meshes:
        def __init__(self, verts, faces):
            self.verts, self.faces = verts, faces

    def rasterize_meshes(
        meshes, image_size, blur_radius, faces_per_pixel, bin_size, max_faces_per_bin, perspective_correct
    ):
        calls.update(
            image_size=image_size,
            blur_radius=blur_radius,
            faces_per_pixel=faces_per_pixel,
            perspective_correct=perspective_correct,
        )
        h, w = image_size
        b, f = meshes.faces.shape[:2]
        fv = meshes.verts[torch.arange(b)[:, None, None], meshes.faces]  # (B, F, 3, 3), pytorch3d frame
        xs = _ndc_centres(w, h).flip(0)  # output column c samples pytorch3d index w-1-c
        ys = _ndc_centres(h, w).flip(0)
        p2f, bary, zbuf = rasterize_reference(fv, xs, ys)
        packed = torch.where(p2f >= 0, p2f + (torch.arange(b) * f).view(b, 1, 1), p2f)
        bary = torch.where(p2f[..., None] >= 0, bary, torch.full_like(bary, -1))
        return packed[..., None], zbuf[..., None], bary[..., None, :], torch.zeros_like(zbuf)[..., None]

    structures = types.ModuleType("pytorch3d.structures")
    structures.Meshes = Meshes
    raster = types.ModuleType("pytorch3d.renderer.mesh.rasterize_meshes")
    raster.rasterize_meshes = rasterize_meshes
    for name, module in [
        ("pytorch3d", types.ModuleType("pytorch3d")),
        ("pytorch3d.structures", structures),
        ("pytorch3d.renderer", types.ModuleType("pytorch3d.renderer")),
        ("pytorch3d.renderer.mesh", types.ModuleType("pytorch3d.renderer.mesh")),
        ("pytorch3d.renderer.mesh.rasterize_meshes", raster),
    ]:
        monkeypatch.setitem(sys.modules, name, module)
    return calls


@pytest.mark.parametrize("h,w", [(24, 24), (20, 32), (30, 18)])
def test_pytorch3d_adapter_converts_frame_and_indices(monkeypatch, h, w):
    calls = _fake_pytorch3d(monkeypatch)
    fv = random_face_vertices(300, batch=2, seed=5)
    got = rasterize(fv, h, w, backend="pytorch3d")
    assert calls == {"image_size": (h, w), "blur_radius": 0.0, "faces_per_pixel": 1, "perspective_correct": False}
    prepared = prepare_face_vertices(fv, h, w)
    expected = rasterize_reference(prepared, *pixel_centres(h, w))
    diff = compare(expected, got)
    assert diff.face_mismatches == 0 and diff.within(1e-6), diff.describe()
    assert bool((got.bary[got.pix_to_face < 0] == 0).all()) and int(got.pix_to_face.max()) < 300


def test_pytorch3d_adapter_handles_empty_meshes(monkeypatch):
    _fake_pytorch3d(monkeypatch)
    frags = rasterize(torch.zeros(1, 0, 3, 3), 4, 4, backend="pytorch3d")
    assert bool((frags.pix_to_face == -1).all())


def test_a_resolved_backend_is_used_as_is_and_checked_against_the_device(world, monkeypatch):
    chosen = choose_backend("cpu", "torch")
    assert isinstance(chosen, backends.Backend) and chosen.kernel_device is None
    monkeypatch.setattr(backends, "choose_backend", lambda *a, **k: pytest.fail("resolved again"))
    fv = random_face_vertices(20, seed=1)
    assert rasterize(fv, 8, 8, backend=chosen).backend == "torch"
    cuda_kernel = backends.Backend("cuda", "test", chosen.run, kernel_device="cuda")
    with pytest.raises(UsageError, match="takes CUDA tensors, these are on cpu"):
        rasterize(fv, 8, 8, backend=cuda_kernel)


def test_backend_names_are_not_device_names_in_the_registry():
    assert backends.kernel_device("cpu") == "cpu" and backends.kernel_device("cuda") == "cuda"
    assert backends.kernel_device("torch") is None and backends.kernel_device("pytorch3d") is None
    assert backends.COMPILED_FOR_DEVICE == {"cuda": "cuda", "cpu": "cpu"}
    with pytest.raises(UsageError, match="unknown rasterizer backend"):
        backends.kernel_device("opengl")

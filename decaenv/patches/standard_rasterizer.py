"""Shim: DECA's `standard_rasterize_cuda` module, backed by decaenv's rasterizer (no JIT build).

DECA's `set_rasterizer('standard')` compiles `standard_rasterize_cuda` with `torch.utils.cpp_extension.load` at
run time, then does `from standard_rasterize_cuda import standard_rasterize`. That build needs a CUDA toolkit
matching torch, and with one it still often fails (FM02/FM04/FM05: `-ccbin=$(which gcc-7)`, `-std=c++14`,
ATen calls today's torch removed); on a machine without CUDA it cannot work at all. This shim registers a
module of that name whose functions take exactly the arguments and buffers of DECA's C++ functions and fill
them in place with the same meaning, computed by decaenv's rasterizer: the compiled decaenv extension when
one is built for this torch (`decaenv build`; CPU tensors on the cpu kernel, CUDA tensors on the cuda kernel),
else decaenv's vectorised PyTorch backend on the tensors' own device. `load(name='standard_rasterize_cuda',
...)` then returns that module instead of compiling; other extensions build as before.

DECA's kernel, per face of `face_vertices` (B, F, 3, 3) in pixel units (x = column, y = row, z = depth),
per integer pixel (x, y) of the face's bounding box: barycentrics w = (1 - u - v, v, u); covered when
w0 > 0, w1 >= 0, w2 >= 0; depth zp = 1 / (w0/z0 + w1/z1 + w2/z2); the pixel takes the face when zp <= the
depth already in `depth_buffer` (in/out), writing depth, face index (int32) and barycentrics. Here the
coverage, the barycentrics and the nearest face come from decaenv's rasterizer (pytorch3d's rule: all three
barycentrics > 0, nearest by interpolated depth), then the same in/out merge is done. The two agree on every
pixel whose centre is not exactly on a triangle edge (where DECA's own CUDA result depends on thread order).
Upstream: https://github.com/yfeng95/DECA/issues/94 (the JIT build failing, one of many reports; FM01-FM07)
"""

from __future__ import annotations

import functools
import importlib.machinery
import logging
import sys
import types
from typing import Any, Callable, List

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import Patcher

log = logging.getLogger("decaenv")

MODULE_NAME = "standard_rasterize_cuda"
_MARK = "__decaenv_stand_in__"


def _backend_for(device: Any) -> str:
    """decaenv's compiled kernel for this device type when it is built and loads, else "torch"."""
    from decaenv.runtime.rasterizer.backends import availability

    kind = "cuda" if device.type == "cuda" else "cpu"
    try:
        usable = availability(kind, device.type)[0]
    except ImportError:  # decaenv's own dependencies (platformdirs) are not installed in this interpreter
        usable = False
    return kind if usable else "torch"


def _check(face_vertices: Any, buffers: List[Any], height: int, width: int) -> None:
    shape = tuple(face_vertices.shape)
    if face_vertices.dim() != 4 or shape[2:] != (3, 3):
        raise ValueError(f"standard_rasterize: face_vertices must be (B, F, 3, 3), got {shape}")
    b = shape[0]
    for name, buf, tail in zip(("depth_buffer", "triangle_buffer", "third buffer"), buffers, ((), (), (3,))):
        if tuple(buf.shape) != (b, height, width, *tail):
            raise ValueError(
                f"standard_rasterize: {name} must be {(b, height, width, *tail)} for "
                f"height={height}, width={width}, got {tuple(buf.shape)}"
            )
        if buf.device != face_vertices.device:
            raise ValueError(f"standard_rasterize: {name} is on {buf.device}, face_vertices on {face_vertices.device}")


def _nearest(face_vertices: Any, height: int, width: int):
    """Pixel-unit face vertices → (pix_to_face (B,H,W) int64, bary (B,H,W,3), covered (B,H,W) bool)."""
    import torch

    from decaenv.runtime.rasterizer.api import rasterize

    fv = face_vertices.detach().to(torch.float32).clone()
    fv[..., 0] = (2.0 * fv[..., 0] + 1.0) / width - 1.0  # pixel column j ↔ its centre, DECA's frame
    fv[..., 1] = (2.0 * fv[..., 1] + 1.0) / height - 1.0
    frags = rasterize(fv, height, width, backend=_backend_for(fv.device))
    return frags.pix_to_face, frags.bary, frags.pix_to_face >= 0


def _merge(
    face_vertices: Any, depth_buffer: Any, triangle_buffer: Any, pix_to_face: Any, bary: Any, covered: Any
) -> Any:
    """DECA's depth test against the in/out depth buffer; returns the (B,H,W) mask of pixels written."""
    import torch

    b, n_faces = face_vertices.shape[:2]
    z = face_vertices.detach()[..., 2].to(depth_buffer.dtype)  # (B, F, 3)
    index = pix_to_face.clamp(min=0).reshape(b, -1, 1).expand(-1, -1, 3)
    z_pix = z.gather(1, index).reshape(*pix_to_face.shape, 3)
    with torch.no_grad():
        zp = 1.0 / (bary.to(z_pix.dtype) / z_pix).sum(-1)
    write = covered & (zp <= depth_buffer)
    depth_buffer[write] = zp[write]
    triangle_buffer[write] = pix_to_face[write].to(triangle_buffer.dtype)
    return write


def standard_rasterize(
    face_vertices: Any, depth_buffer: Any, triangle_buffer: Any, baryw_buffer: Any, height: int, width: int
) -> List[Any]:
    """DECA's `standard_rasterize`: fill the buffers in place and return them.

    Args:
        face_vertices: (B, F, 3, 3) float tensor, pixel units (x column, y row, z depth > 0).
        depth_buffer: (B, H, W) float, in/out (DECA starts it at 1e6).
        triangle_buffer: (B, H, W) int32, in/out; face index of the pixel (DECA starts it at -1).
        baryw_buffer: (B, H, W, 3) float, in/out; barycentrics of that face.
        height, width: H and W.

    Returns:
        [depth_buffer, triangle_buffer, baryw_buffer] (the same tensors).
    """
    _check(face_vertices, [depth_buffer, triangle_buffer, baryw_buffer], int(height), int(width))
    pix_to_face, bary, covered = _nearest(face_vertices, int(height), int(width))
    write = _merge(face_vertices, depth_buffer, triangle_buffer, pix_to_face, bary, covered)
    baryw_buffer[write] = bary[write].to(baryw_buffer.dtype)
    return [depth_buffer, triangle_buffer, baryw_buffer]


def standard_rasterize_colors(
    face_vertices: Any, face_colors: Any, depth_buffer: Any, triangle_buffer: Any, images: Any, height: int, width: int
) -> List[Any]:
    """DECA's `standard_rasterize_colors`: like `standard_rasterize`, front-facing faces only (DECA's test
    (y2-y0)(x1-x0) < (y1-y0)(x2-x0)), writing the interpolated face colours into `images` (B, H, W, 3).

    Returns:
        [depth_buffer, triangle_buffer, images] (the same tensors).
    """
    import torch

    _check(face_vertices, [depth_buffer, triangle_buffer, images], int(height), int(width))
    fv = face_vertices.detach()
    x, y = fv[..., 0], fv[..., 1]
    front = (y[..., 2] - y[..., 0]) * (x[..., 1] - x[..., 0]) < (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])
    culled = torch.where(front[..., None, None], fv, torch.full_like(fv, float("nan")))
    pix_to_face, bary, covered = _nearest(culled, int(height), int(width))
    write = _merge(fv, depth_buffer, triangle_buffer, pix_to_face, bary, covered)
    b = fv.shape[0]
    index = pix_to_face.clamp(min=0).reshape(b, -1, 1).expand(-1, -1, 9)
    colors = face_colors.detach().reshape(b, -1, 9).gather(1, index).reshape(*pix_to_face.shape, 3, 3)
    values = (bary.to(colors.dtype)[..., None] * colors).sum(-2)
    images[write] = values[write].to(images.dtype)
    return [depth_buffer, triangle_buffer, images]


def module() -> types.ModuleType:
    """A fresh `standard_rasterize_cuda` module holding the two functions."""
    mod = types.ModuleType(MODULE_NAME, "decaenv's stand-in for DECA's standard_rasterize_cuda extension")
    mod.__spec__ = importlib.machinery.ModuleSpec(MODULE_NAME, None)
    for name, function in (
        ("standard_rasterize", standard_rasterize),
        ("standard_rasterize_colors", standard_rasterize_colors),
    ):
        setattr(mod, name, function)
    setattr(mod, _MARK, True)
    return mod


def intercepting_load(load: Callable[..., Any], stand_in: types.ModuleType) -> Callable[..., Any]:
    """Wrap `torch.utils.cpp_extension.load`: the name `standard_rasterize_cuda` gets `stand_in`, no build."""

    @functools.wraps(load)
    def wrapper(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == MODULE_NAME:
            log.info("cpp_extension.load(%r): decaenv's rasterizer stands in (no build)", name)
            return stand_in
        return load(name, *args, **kwargs)

    vars(wrapper)["__decaenv_wrapped__"] = load  # marks decaenv's wrapper and keeps the original
    return wrapper


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    import torch.utils.cpp_extension as cpp_extension

    stand_in = module()
    patcher.setitem(sys.modules, MODULE_NAME, stand_in)  # `from standard_rasterize_cuda import ...` after load
    patcher.setattr(cpp_extension, "load", intercepting_load(cpp_extension.load, stand_in))


PATCH = Patch(
    id="standard-rasterizer",
    title="DECA's standard_rasterize_cuda from decaenv's rasterizer: no JIT build, CPU and CUDA tensors",
    reason="DECA's 'standard' rasterizer is compiled at run time by torch.utils.cpp_extension.load: impossible "
    "without CUDA ('CUDA_HOME environment variable is not set'), and with it often broken (gcc-7, "
    "-std=c++14, removed ATen API)",
    link="https://github.com/yfeng95/DECA/issues/94",
    target=Target("torch", "torch.utils.cpp_extension"),
    needed_for=versions(),
    apply=_apply,
)

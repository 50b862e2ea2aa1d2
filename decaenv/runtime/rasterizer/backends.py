"""The registry of rasterizer backends and the choice made by `backend="auto"`.

| name       | devices   | what                                                          |
|------------|-----------|---------------------------------------------------------------|
| cuda       | cuda      | compiled CUDA kernel (`decaenv build --cuda`)                 |
| cpu        | cpu       | compiled, tiled, multi-threaded C++ kernel (`decaenv build`)  |
| pytorch3d  | cpu, cuda | pytorch3d's rasterize_meshes, when pytorch3d is importable    |
| torch      | cpu, cuda | vectorised pure PyTorch, always available                     |
| reference  | cpu, cuda | naive, for tests (runs on the CPU, returns on the input device)|

auto: CUDA tensors -> cuda if built, CPU tensors -> cpu if built; else pytorch3d; else torch. The choice
and its reason are logged once per device type and choice (warning level when it falls back).
MPS tensors (Apple GPUs) have no kernel of their own: they are rasterized on the CPU (the choice made for CPU
tensors) and the results moved back to the MPS device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch

from decaenv.errors import BuildError, UsageError

log = logging.getLogger("decaenv.runtime.rasterizer")

RasterFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
NAMES = ("cuda", "cpu", "pytorch3d", "torch", "reference")
#: Device types without a rasterizer of their own: their tensors are rasterized on the CPU.
HOSTED_ON_CPU = ("mps",)
_announced: set = set()


@dataclass(frozen=True)
class Backend:
    """A resolved backend: its name and its function (fv, xs, ys) -> (pix_to_face, bary, zbuf)."""

    name: str
    run: RasterFn


@dataclass(frozen=True)
class BackendChoice:
    """What `choose_backend` picked and why (one sentence)."""

    name: str
    reason: str


def _compiled(fv, xs, ys):
    return tuple(torch.ops.decaenv.rasterize(fv, xs, ys))


def _pytorch3d(fv, xs, ys):
    from decaenv.runtime.rasterizer.p3d_adapter import rasterize_pytorch3d

    return rasterize_pytorch3d(fv, xs, ys)


def _torch(fv, xs, ys):
    from decaenv.runtime.rasterizer.vectorized import rasterize_vectorized

    return rasterize_vectorized(fv, xs, ys)


def _reference(fv, xs, ys):
    from decaenv.runtime.rasterizer.reference import rasterize_reference

    return rasterize_reference(fv, xs, ys)


_RUN: Dict[str, RasterFn] = {"cuda": _compiled, "cpu": _compiled, "pytorch3d": _pytorch3d, "torch": _torch,
                             "reference": _reference}


def _device_type(device) -> str:
    return torch.device(device).type if device is not None else "cpu"


def pytorch3d_importable() -> Tuple[bool, str]:
    """Whether pytorch3d's mesh rasterizer can be imported, and the import error if not."""
    try:
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return False, f"pytorch3d is not importable ({type(exc).__name__}: {exc})"
    return True, "pytorch3d is importable"


def availability(name: str, device_type: str) -> Tuple[bool, str]:
    """Whether backend `name` can rasterize tensors on `device_type`, and why (not)."""
    from decaenv.runtime.rasterizer import extension

    if name in ("torch", "reference"):
        return True, "pure PyTorch, always available"
    if name == "pytorch3d":
        return pytorch3d_importable()
    if name not in ("cpu", "cuda"):
        raise UsageError(f"unknown rasterizer backend {name!r}", hint=f"use one of: auto, {', '.join(NAMES)}")
    if name != device_type:
        return False, f"the {name} backend takes {name.upper()} tensors, these are on {device_type}"
    return extension.kernel_for(device_type)


def available_backends(device=None) -> List[str]:
    """Backends usable for tensors on `device` (default: those usable on any device), best first."""
    types = [_device_type(device)] if device is not None else ["cpu", "cuda"]
    return [n for n in NAMES if any(availability(n, t)[0] for t in types)]


def choose_backend(device, requested: str = "auto") -> BackendChoice:
    """Resolve `requested` ("auto" or a backend name) for tensors on `device`.

    Raises:
        UsageError: unknown name, or a backend that cannot take this device / is not installed.
        BuildError: the compiled backend was requested but is not built (or failed to load).
    """
    device_type = _device_type(device)
    if device_type in HOSTED_ON_CPU:
        if requested == "cuda":
            raise UsageError(f"rasterizer backend 'cuda' cannot take {device_type} tensors",
                             hint="use backend 'auto' (the CPU rasterizer) or 'cpu'")
        choice = choose_backend("cpu", requested)
        return BackendChoice(choice.name, f"{device_type} tensors are rasterized on the CPU: {choice.reason}")
    if requested != "auto":
        ok, why = availability(requested, device_type)
        if ok:
            return BackendChoice(requested, f"requested ({why})")
        if requested in ("cpu", "cuda") and requested == device_type:
            raise BuildError(f"the {requested} rasterizer extension is not available: {why}",
                             hint=f"run `decaenv build --{requested}`, or use backend 'auto' or 'torch'")
        raise UsageError(f"rasterizer backend {requested!r} cannot be used here: {why}",
                         hint="use backend 'auto' to let decaenv choose")
    compiled = "cuda" if device_type == "cuda" else "cpu"
    ok, why = availability(compiled, device_type)
    if ok:
        return BackendChoice(compiled, f"{device_type} tensors, {why}")
    missing = f"compiled {compiled} extension unavailable: {why}"
    if pytorch3d_importable()[0]:
        return BackendChoice("pytorch3d", f"{missing}; pytorch3d is importable")
    return BackendChoice("torch", f"{missing}; pytorch3d not installed")


def get_backend(requested: str, device) -> Backend:
    """`choose_backend`, announcing an automatic choice once per process, and the backend's function."""
    choice = choose_backend(device, requested)
    if requested == "auto":
        tag = (_device_type(device), choice.name)
        if tag not in _announced:
            _announced.add(tag)
            level = logging.INFO if choice.name in ("cpu", "cuda") else logging.WARNING
            log.log(level, "rasterizer: using the %s backend: %s", choice.name, choice.reason)
    run = _RUN[choice.name]
    return Backend(choice.name, on_cpu(run) if _device_type(device) in HOSTED_ON_CPU else run)


def on_cpu(run: RasterFn) -> RasterFn:
    """`run` applied to CPU copies of its inputs; the outputs go back to the inputs' device.

    fv: (N, F, 3, 3), xs/ys: pixel centres → (pix_to_face, bary, zbuf), each on fv's device.
    """
    def wrapped(fv, xs, ys):
        outputs = run(fv.cpu(), xs.cpu(), ys.cpu())
        return tuple(t.to(fv.device) for t in outputs)

    return wrapped


def reset_announcements() -> None:
    """Forget which choices were announced (tests)."""
    _announced.clear()

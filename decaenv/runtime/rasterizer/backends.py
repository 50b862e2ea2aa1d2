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

A choice is resolved once into a `Backend` (name, reason, the device type its kernel takes, the function) and
that object is passed down (`rasterize(..., backend=Backend)`): nothing re-resolves a name per call. The
compiled backends are named "cpu" and "cuda" after their kernels; in code, which device a backend takes is
`Backend.kernel_device` / `BackendSpec.kernel_device`, never the backend's name.

MPS tensors (Apple GPUs) have no kernel of their own: they are rasterized on the CPU (the choice made for CPU
tensors, wrapped by `on_cpu`) and the results moved back to the MPS device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch

from decaenv.errors import BuildError, UsageError

log = logging.getLogger("decaenv.runtime.rasterizer")

RasterFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
#: Backend names, best first. The compiled backends are named after the kernel they hold.
COMPILED_CUDA, COMPILED_CPU = "cuda", "cpu"
NAMES = (COMPILED_CUDA, COMPILED_CPU, "pytorch3d", "torch", "reference")
#: Device types without a rasterizer of their own: their tensors are rasterized on the CPU.
HOSTED_ON_CPU = ("mps",)
_announced: set = set()


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


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend.

    Attributes:
        name: its public name. run: (fv, xs, ys) -> (pix_to_face, bary, zbuf).
        kernel_device: torch device type of a compiled kernel ("cpu", "cuda"); None: any device.
        build_variant: the `decaenv build` variant that provides it (compiled backends only).
    """

    name: str
    run: RasterFn
    kernel_device: Optional[str] = None
    build_variant: Optional[str] = None


#: The registry of backends, in `NAMES` order.
SPECS: Dict[str, BackendSpec] = {
    COMPILED_CUDA: BackendSpec(COMPILED_CUDA, _compiled, kernel_device="cuda", build_variant="cuda"),
    COMPILED_CPU: BackendSpec(COMPILED_CPU, _compiled, kernel_device="cpu", build_variant="cpu"),
    "pytorch3d": BackendSpec("pytorch3d", _pytorch3d),
    "torch": BackendSpec("torch", _torch),
    "reference": BackendSpec("reference", _reference),
}
#: The compiled backend that holds the kernel for each device type.
COMPILED_FOR_DEVICE = {spec.kernel_device: name for name, spec in SPECS.items() if spec.kernel_device}


@dataclass(frozen=True)
class Backend:
    """A resolved backend: what `choose_backend` picked, why, and the function to call.

    Attributes:
        name: the backend's name ("cuda", "cpu", "pytorch3d", "torch", "reference").
        reason: why it was chosen (one sentence).
        run: (fv, xs, ys) -> (pix_to_face, bary, zbuf).
        kernel_device: device type its tensors must be on (compiled backends); None: any device.
    """

    name: str
    reason: str
    run: RasterFn = field(repr=False, compare=False)
    kernel_device: Optional[str] = None

    def check_device(self, device) -> None:
        """Raise `UsageError` when this backend cannot take tensors on `device`."""
        device_type = _device_type(device)
        if self.kernel_device is not None and self.kernel_device != device_type:
            why = _wrong_device(self.name, self.kernel_device, device_type)
            raise UsageError(
                f"rasterizer backend {self.name!r} cannot be used here: {why}",
                hint="use backend 'auto' to let decaenv choose",
            )


def _device_type(device) -> str:
    return torch.device(device).type if device is not None else "cpu"


def _wrong_device(name: str, kernel_device: str, device_type: str) -> str:
    return f"the {name} backend takes {kernel_device.upper()} tensors, these are on {device_type}"


def _spec(name: str) -> BackendSpec:
    if name not in SPECS:
        raise UsageError(f"unknown rasterizer backend {name!r}", hint=f"use one of: auto, {', '.join(NAMES)}")
    return SPECS[name]


def _resolved(name: str, reason: str) -> Backend:
    spec = SPECS[name]
    return Backend(name, reason, spec.run, spec.kernel_device)


def kernel_device(name: str) -> Optional[str]:
    """The device type backend `name` takes (compiled backends), None for backends that take any device."""
    return _spec(name).kernel_device


def pytorch3d_importable() -> Tuple[bool, str]:
    """Whether pytorch3d's mesh rasterizer can be imported, and the import error if not."""
    try:
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes  # noqa: F401 - the import is the probe
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return False, f"pytorch3d is not importable ({type(exc).__name__}: {exc})"
    return True, "pytorch3d is importable"


def availability(name: str, device_type: str) -> Tuple[bool, str]:
    """Whether backend `name` can rasterize tensors on `device_type`, and why (not)."""
    from decaenv.runtime.rasterizer import extension

    spec = _spec(name)
    if name == "pytorch3d":
        return pytorch3d_importable()
    if spec.kernel_device is None:
        return True, "pure PyTorch, always available"
    if spec.kernel_device != device_type:
        return False, _wrong_device(name, spec.kernel_device, device_type)
    return extension.kernel_for(spec.kernel_device)


def available_backends(device=None) -> List[str]:
    """Backends usable for tensors on `device` (default: those usable on any device), best first."""
    types = [_device_type(device)] if device is not None else ["cpu", "cuda"]
    return [n for n in NAMES if any(availability(n, t)[0] for t in types)]


def choose_backend(device, requested: str = "auto") -> Backend:
    """Resolve `requested` ("auto" or a backend name) for tensors on `device`, once.

    Raises:
        UsageError: unknown name, or a backend that cannot take this device / is not installed.
        BuildError: the compiled backend was requested but is not built (or failed to load).
    """
    device_type = _device_type(device)
    if device_type in HOSTED_ON_CPU:
        return _hosted_on_cpu(device_type, requested)
    if requested != "auto":
        ok, why = availability(requested, device_type)
        if ok:
            return _resolved(requested, f"requested ({why})")
        spec = SPECS[requested]
        if spec.build_variant is not None and spec.kernel_device == device_type:
            raise BuildError(
                f"the {requested} rasterizer extension is not available: {why}",
                hint=f"run `decaenv build --{spec.build_variant}`, or use backend 'auto' or 'torch'",
            )
        raise UsageError(
            f"rasterizer backend {requested!r} cannot be used here: {why}",
            hint="use backend 'auto' to let decaenv choose",
        )
    compiled = COMPILED_FOR_DEVICE.get(device_type, COMPILED_CPU)
    ok, why = availability(compiled, device_type)
    if ok:
        return _resolved(compiled, f"{device_type} tensors, {why}")
    missing = f"compiled {compiled} extension unavailable: {why}"
    if pytorch3d_importable()[0]:
        return _resolved("pytorch3d", f"{missing}; pytorch3d is importable")
    return _resolved("torch", f"{missing}; pytorch3d not installed")


def _hosted_on_cpu(device_type: str, requested: str) -> Backend:
    """The backend for tensors on a device without a rasterizer (MPS): the CPU's choice, run on CPU copies."""
    if requested != "auto" and kernel_device(requested) not in (None, "cpu"):
        raise UsageError(
            f"rasterizer backend {requested!r} cannot take {device_type} tensors",
            hint="use backend 'auto' (the CPU rasterizer) or 'cpu'",
        )
    choice = choose_backend("cpu", requested)
    reason = f"{device_type} tensors are rasterized on the CPU: {choice.reason}"
    return Backend(choice.name, reason, on_cpu(choice.run), kernel_device=None)


def on_cpu(run: RasterFn) -> RasterFn:
    """`run` applied to CPU copies of its inputs; the outputs go back to the inputs' device.

    fv: (N, F, 3, 3), xs/ys: pixel centres → (pix_to_face, bary, zbuf), each on fv's device.
    """

    def wrapped(fv, xs, ys):
        pix_to_face, bary, zbuf = run(fv.cpu(), xs.cpu(), ys.cpu())
        return pix_to_face.to(fv.device), bary.to(fv.device), zbuf.to(fv.device)

    return wrapped


def get_backend(requested: Union[str, Backend], device) -> Backend:
    """A `Backend` for tensors on `device`: a resolved one is checked and returned as is; a name is resolved
    with `choose_backend`, announcing an automatic choice once per process."""
    if isinstance(requested, Backend):
        requested.check_device(device)
        return requested
    choice = choose_backend(device, requested)
    if requested == "auto":
        tag = (_device_type(device), choice.name)
        if tag not in _announced:
            _announced.add(tag)
            compiled = SPECS[choice.name].kernel_device is not None
            level = logging.INFO if compiled else logging.WARNING
            log.log(
                level, "rasterizer: using the %s backend: %s%s", choice.name, choice.reason, _input_side_note(compiled)
            )
    return choice


def _input_side_note(compiled: bool) -> str:
    """Where the CPU extension is not loaded, the input side's kernels are missing too: say so in the same line."""
    from decaenv.runtime.rasterizer import extension

    if compiled or extension.kernel_for("cpu")[0]:
        return ""
    return "; the crop warp, PNG decoding and MTCNN run without their compiled kernels too (slower)"


def reset_announcements() -> None:
    """Forget which choices were announced (tests)."""
    _announced.clear()

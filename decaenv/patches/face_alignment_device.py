"""Shim: `face_alignment.FaceAlignment` defaults that fail or crawl on a machine without CUDA.

`FaceAlignment(...)` defaults to `device='cuda'` (DECA's detector never passes a device, so it fails on CPU
hosts), and from 1.5.0 to `compile=True`, whose `torch.compile` takes minutes on a CPU. When CUDA is not
available and the caller did not choose, the shim passes `device='cpu'` and, where the parameter exists,
`compile=False`. With CUDA available, or when the caller passes the arguments, nothing changes.
Upstream: https://github.com/1adrianb/face-alignment (API of `FaceAlignment.__init__`)
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import Patcher


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no usable torch means no CUDA
        return False


def cpu_defaults(init: Callable[..., None], cuda_available: Callable[[], bool] = _cuda_available) -> Callable:
    """Wrap `FaceAlignment.__init__` so that unchosen `device`/`compile` get CPU-friendly values."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind_partial(self, *args, **kwargs).arguments
        if "device" not in bound and not cuda_available():
            kwargs["device"] = "cpu"
        device = str(kwargs.get("device", bound.get("device", "cuda")))
        if "compile" in signature.parameters and "compile" not in bound and device.startswith("cpu"):
            kwargs["compile"] = False
        init(self, *args, **kwargs)

    vars(__init__)["__decaenv_wrapped__"] = init  # marks decaenv's wrapper and keeps the original
    return __init__


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    import face_alignment

    cls = face_alignment.FaceAlignment
    patcher.setattr(cls, "__init__", cpu_defaults(cls.__init__))


PATCH = Patch(
    id="face-alignment-cpu",
    title="FaceAlignment(device='cpu', compile=False) when CUDA is not available",
    reason="FaceAlignment defaults to device='cuda' (fails without CUDA; DECA passes no device) and, from "
    "1.5.0, to compile=True (minutes of torch.compile on a CPU); no effect where CUDA is available",
    link="https://github.com/1adrianb/face-alignment",
    target=Target("face-alignment", "face_alignment"),
    needed_for=versions(),
    apply=_apply,
)

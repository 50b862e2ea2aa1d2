"""Shim: `torch.cross` without `dim` (deprecated in torch 2.2; DECA's vertex normals call it so).

Without `dim`, torch picks the *first* dimension of size 3, which is wrong for DECA's (N, 3) vectors when
N == 3, warns on every process, and is announced to change to `dim=-1` (what `torch.linalg.cross` does). The
shim passes a `dim` explicitly: -1 when the last dimension has size 3 (the future default, and what DECA
means), else the first size-3 dimension exactly as torch would pick it (so (3, N) layouts keep working).
Upstream: https://github.com/pytorch/pytorch/pull/108760
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import Patcher


def default_dim(shape: Any) -> Any:
    """The `dim` the shim passes for a broadcast shape: -1 if its last size is 3, else the first size-3 dim
    (None when there is none: torch then raises its own error)."""
    shape = tuple(shape)
    if shape and shape[-1] == 3:
        return -1
    return next((i for i, n in enumerate(shape) if n == 3), None)


def explicit_dim(cross: Callable[..., Any], torch: Any) -> Callable[..., Any]:
    """Wrap `torch.cross` so that a missing (or None) `dim` is made explicit (see `default_dim`)."""

    @functools.wraps(cross)
    def wrapper(input: Any, other: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and kwargs.get("dim") is None:
            try:
                dim = default_dim(torch.broadcast_shapes(input.shape, other.shape))
            except (RuntimeError, AttributeError, TypeError):
                dim = None
            if dim is not None:
                kwargs["dim"] = dim
        return cross(input, other, *args, **kwargs)

    vars(wrapper)["__decaenv_wrapped__"] = cross  # marks decaenv's wrapper and keeps the original
    return wrapper


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    import torch

    patcher.setattr(torch, "cross", explicit_dim(torch.cross, torch))


PATCH = Patch(
    id="torch-cross-dim",
    title="torch.cross with an explicit dim (-1 for (..., 3) vectors)",
    reason="torch >= 2.2 deprecates torch.cross without dim (a warning in every run; the implicit first "
    "size-3 dim is wrong for 3-vector batches of length 3)",
    link="https://github.com/pytorch/pytorch/pull/108760",
    target=Target("torch", "torch"),
    needed_for=versions(minimum="2.2"),
    apply=_apply,
)

"""Shim: `torch.load` for DECA's `torch.load(model_path)` on today's torch.

Two things break that call (failure modes FM33/FM34):

* torch >= 2.6 defaults to `weights_only=True`. decaenv never turns that off blindly: only when the file's
  sha256 is one the user declared trusted (`decaenv exec --trust-checkpoint FILE`, `PatchConfig.trusted_sha256`)
  does the call run with `weights_only=False`. The digest is computed from the same open file handle that
  torch then reads, so the file cannot be swapped between the check and the load. Any other file loads
  exactly as torch would load it.
* A checkpoint saved on a GPU cannot be loaded on a machine without CUDA unless `map_location` is given:
  when CUDA is not available and the caller passed none, `map_location='cpu'` is added.

An explicit `weights_only=` or `map_location=` from the caller is always respected.
Upstream: https://github.com/pytorch/pytorch/releases/tag/v2.6.0 (the weights_only default flip)
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from typing import Any, BinaryIO, Callable, FrozenSet

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import Patcher

log = logging.getLogger("decaenv")


def sha256_of_stream(fh: BinaryIO) -> str:
    """sha256 of a seekable stream from its current position; the position is restored."""
    start = fh.tell()
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    fh.seek(start)
    return digest.hexdigest()


def _cuda_available(torch: Any) -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken CUDA runtime counts as none
        return False


def trusted_load(load: Callable[..., Any], torch: Any, trusted: FrozenSet[str]) -> Callable[..., Any]:
    """Wrap `torch.load`: CPU `map_location` without CUDA; `weights_only=False` for trusted digests only."""

    @functools.wraps(load)
    def wrapper(f: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and "map_location" not in kwargs and not _cuda_available(torch):
            kwargs["map_location"] = "cpu"
        if not trusted or "weights_only" in kwargs:
            return load(f, *args, **kwargs)
        if isinstance(f, (str, os.PathLike)) and not kwargs.get("mmap"):
            with open(f, "rb") as fh:
                if sha256_of_stream(fh) in trusted:
                    log.info("torch.load(%s): trusted checkpoint (sha256 matches), weights_only=False", f)
                    return load(fh, *args, weights_only=False, **kwargs)
            return load(f, *args, **kwargs)
        if hasattr(f, "read") and hasattr(f, "seek") and getattr(f, "seekable", lambda: True)():
            if sha256_of_stream(f) in trusted:
                log.info("torch.load(<stream>): trusted checkpoint (sha256 matches), weights_only=False")
                return load(f, *args, weights_only=False, **kwargs)
        return load(f, *args, **kwargs)

    vars(wrapper)["__decaenv_wrapped__"] = load  # marks decaenv's wrapper and keeps the original
    return wrapper


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    import torch

    patcher.setattr(torch, "load", trusted_load(torch.load, torch, config.trusted_sha256))


PATCH = Patch(
    id="torch-load",
    title="torch.load: weights_only=False only for hash-verified trusted checkpoints; CPU map_location",
    reason="torch >= 2.6 defaults to weights_only=True and DECA calls torch.load(model_path) with no "
    "map_location, which fails for GPU-saved checkpoints on machines without CUDA",
    link="https://github.com/pytorch/pytorch/releases/tag/v2.6.0",
    target=Target("torch", "torch"),
    needed_for=versions(),
    apply=_apply,
)

"""Loading model files: the one `torch.load` policy, the strict checkpoint loader, small data files.

Every torch file goes through `load_torch_file` (`map_location='cpu'`, `weights_only=True`; deca-spec §1,
§10.4, FM34). The only way around `weights_only` is a file whose sha256 the caller vouches for.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import Dict, Mapping, Optional

import numpy as np

from decaenv.deca_layout import NETWORK_KEYS
from decaenv.errors import DataError, UnsafeContentError

log = logging.getLogger("decaenv")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_head(path: Path, what: str) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}", path=path) from exc
    if not head:
        raise DataError(f"{what} {path} is empty", hint="download it again (decaenv fetch)", path=path)
    if head.lstrip()[:1] == b"<":
        raise DataError(f"{what} {path} is an HTML page, not a model file (a download or login page was saved)",
                        hint="delete it and download it again (decaenv fetch)", path=path)


def _supports_mmap(torch) -> bool:
    import inspect

    try:
        return "mmap" in inspect.signature(torch.load).parameters  # torch >= 2.1
    except (TypeError, ValueError):
        return False


def load_torch_file(path: os.PathLike, what: str = "file", *, trusted_sha256: Optional[str] = None):
    """`torch.load(path, map_location='cpu', weights_only=True)` with one-line errors.

    Zip-format files are memory-mapped, so entries that are never used (the optimizer state in
    `deca_model.tar`) are not read into memory.

    Args:
        path: the file. what: its description for messages.
        trusted_sha256: if given and equal to the file's sha256, a file that `weights_only` refuses is loaded
            with full unpickling (the caller vouches for it). Otherwise such a file is refused.
    Raises:
        DataError: missing, empty, HTML, truncated or not a torch file.
        UnsafeContentError: the file needs unpickling beyond tensors and containers and is not trusted.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist", hint="run `decaenv fetch` or pass --data-dir", path=path)
    _check_head(path, what)
    kwargs = {"mmap": True} if zipfile.is_zipfile(path) and _supports_mmap(torch) else {}
    try:
        return torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    except pickle.UnpicklingError as exc:
        if trusted_sha256 and _sha256(path) == trusted_sha256.lower():
            log.warning("loading %s with full unpickling (sha256 verified by the caller)", path)
            return torch.load(path, map_location="cpu", weights_only=False)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsafeContentError(f"{what} {path} holds objects beyond tensors, refused by torch's safe loader "
                                 f"({first})", hint="use the official file; to open a file you trust, pass "
                                 "its sha256 (`decaenv reconstruct --trust-checkpoint SHA256`, or "
                                 "trusted_sha256= in Python)", path=path) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        message = " ".join(str(exc).split())[:200]
        raise DataError(f"{what} {path} is damaged or not a PyTorch file ({type(exc).__name__}: {message})",
                        hint="download it again (decaenv fetch)", path=path) from exc


def load_checkpoint(path: os.PathLike, *, trusted_sha256: Optional[str] = None) -> Dict[str, Mapping]:
    """Read `deca_model.tar` and return its three state dicts (`E_flame`, `E_detail`, `D_detail`).

    Raises:
        DataError: unreadable, or not a DECA checkpoint (names the missing top-level keys).
    """
    ckpt = load_torch_file(path, "DECA checkpoint", trusted_sha256=trusted_sha256)
    if not isinstance(ckpt, Mapping):
        raise DataError(f"DECA checkpoint {path} holds a {type(ckpt).__name__}, not DECA's dictionary",
                        hint="use the official deca_model.tar", path=Path(path))
    missing = [k for k in NETWORK_KEYS if k not in ckpt]
    if missing:
        raise DataError(f"DECA checkpoint {path} lacks {', '.join(missing)} (has: {', '.join(map(str, ckpt))})",
                        hint="use the official deca_model.tar", path=Path(path))
    return {k: ckpt[k] for k in NETWORK_KEYS}


def _strip_module_prefix(state: Mapping) -> Mapping:
    keys = list(state)
    if keys and all(str(k).startswith("module.") for k in keys):
        return {str(k)[len("module."):]: v for k, v in state.items()}
    return state


def load_strict(module, state: Mapping, name: str, source: os.PathLike) -> None:
    """Copy a state dict into `module`: every key must match and every shape agree.

    Raises:
        DataError: one line naming the missing / unexpected keys and mismatched shapes.
    """
    import torch

    state = _strip_module_prefix(state)
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in state and (not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != tuple(v.shape))]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
                parts.append(f"{len(items)} {label}: {shown}")
        raise DataError(f"DECA checkpoint {source}: {name} does not match DECA's network ({'; '.join(parts)})",
                        hint="use the official deca_model.tar (decaenv fetch deca-model)", path=Path(source))
    module.load_state_dict(state, strict=True)


def load_numeric_npy(path: os.PathLike, what: str) -> np.ndarray:
    """A plain numeric `.npy` (no pickle).

    Raises:
        DataError: missing, unreadable or an object array.
    """
    path = Path(path)
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DataError(f"{what} {path} does not exist", hint="run `decaenv fetch` or pass --data-dir",
                        path=path) from exc
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{what} {path} is damaged or not a numeric .npy file ({exc})",
                        hint="download DECA's data files again (decaenv fetch)", path=path) from exc


def load_mask_png(path: os.PathLike, what: str) -> np.ndarray:
    """Channel 0 of an 8-bit PNG as float32 in [0, 1] (DECA's `uv_face_eye_mask.png` reading).

    Raises:
        DataError: missing or unreadable.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            array = np.asarray(image)
    except FileNotFoundError as exc:
        raise DataError(f"{what} {path} does not exist", hint="run `decaenv fetch` or pass --data-dir",
                        path=path) from exc
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"{what} {path} is not a readable image ({exc})", hint="download it again",
                        path=path) from exc
    channel = array if array.ndim == 2 else array[..., 0]
    scale = 65535.0 if channel.dtype == np.uint16 else 255.0
    return (channel.astype(np.float32) / scale).astype(np.float32)

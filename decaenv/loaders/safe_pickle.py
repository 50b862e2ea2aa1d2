"""Allowlisted unpickling for DECA's and FLAME's pickled data files (no chumpy, no arbitrary code).

`pickle.load` runs whatever callables a file names, so decaenv never uses it on a file it did not write.
`SafeUnpickler` resolves only the globals these files legitimately reference:

* numpy array reconstruction and dtypes, under numpy 1.x (`numpy.core.*`) and 2.x (`numpy._core.*`) names,
  including protocol-5 `_frombuffer` (the default protocol from Python 3.14);
* `scipy.sparse` csc/csr/coo matrices and arrays (old `scipy.sparse.csc` and new `scipy.sparse._csc` paths)
  — rebuilt by a numpy-only stand-in, so scipy is not needed either;
* chumpy objects (`chumpy.ch.Ch` and friends) — a stand-in that keeps the pickled state and yields its
  `x` array; chumpy itself is never imported;
* a few harmless builtins Python 2 pickles use (`set`, `frozenset`, `OrderedDict`, `object` and
  `copy_reg._reconstructor` for protocol 0/1, `_codecs.encode` restricted to latin-1);
* torch tensors in `landmark_embedding.npy` (`torch._utils._rebuild_tensor_v2` and storages re-read with
  `torch.load(weights_only=True)`), only when torch is importable.

Before unpickling, `decaenv.loaders.pickle_limits.check_pickle` replays the opcodes and refuses a pickle
whose object tree, nesting, memo references or containers pass limits derived from the real files (a
"billion laughs" pickle is refused in milliseconds).

Anything else — `os.system`, `builtins.eval`, `subprocess.Popen`, any class not listed — is refused with
`UnsafeContentError` before it can run.

Upstream context: chumpy is unmaintained and breaks on numpy >= 1.24 and Python >= 3.11
(https://github.com/mattloper/chumpy/issues/55, /57).
"""

from __future__ import annotations

import codecs
import functools
import io
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Tuple

import numpy as np

from decaenv._typing import StrPath
from decaenv.errors import DataError, UnsafeContentError
from decaenv.loaders._standins import SPARSE_GLOBALS, ChumpyStandIn, SparseStandIn, chumpy_class, sparse_class
from decaenv.loaders.pickle_limits import check_pickle

__all__ = ["SafeUnpickler", "load_pickle", "load_object_npy", "allowed_globals", "ChumpyStandIn", "SparseStandIn"]

_NP_CORE = np.ndarray.__reduce__(np.zeros(1))[0].__module__  # "numpy.core.multiarray" or "numpy._core.multiarray"
_NP_NUMERIC = _NP_CORE.rsplit(".", 1)[0] + ".numeric"
# Errors a damaged (not hostile) stream raises inside the unpickler or numpy's reconstruction.
_DAMAGE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    OverflowError,
    RecursionError,
    MemoryError,
    RuntimeError,
)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise UnsafeContentError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _reconstructor(cls, base, state):
    if base is not object or not isinstance(cls, type):
        raise UnsafeContentError("refusing copyreg._reconstructor on a non-plain base class")
    return object.__new__(cls)


def _numpy_global(name: str, module: str = _NP_CORE) -> Callable[[], Any]:
    def resolve():
        import importlib

        return getattr(importlib.import_module(module), name)

    return resolve


def _torch_global(module: str, name: str) -> Callable[[], Any]:
    def resolve():
        try:
            import torch  # noqa: F401 - imported only to check that it is installed
        except Exception as exc:
            raise DataError(
                f"this file stores torch tensors, so reading it needs a working torch ({type(exc).__name__}: {exc})",
                hint="install torch: `pip install torch`",
            ) from exc
        import importlib

        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _load_storage_weights_only
        return getattr(importlib.import_module(module), name)

    return resolve


def _load_storage_weights_only(data: bytes):
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
_ALLOWED: Dict[Tuple[str, str], Callable[[], Any]] = {
    **{(mod, "_reconstruct"): _numpy_global("_reconstruct") for mod in _MULTIARRAY},
    **{(mod, "scalar"): _numpy_global("scalar") for mod in _MULTIARRAY},
    **{
        (mod, "_frombuffer"): _numpy_global("_frombuffer", _NP_NUMERIC)
        for mod in ("numpy.core.numeric", "numpy._core.numeric")
    },
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    **{key: functools.partial(sparse_class, fmt, kind) for key, (fmt, kind) in SPARSE_GLOBALS.items()},
    **{(mod, "set"): (lambda: set) for mod in ("__builtin__", "builtins")},
    **{(mod, "frozenset"): (lambda: frozenset) for mod in ("__builtin__", "builtins")},
    **{(mod, "object"): (lambda: object) for mod in ("__builtin__", "builtins")},
    ("collections", "OrderedDict"): lambda: __import__("collections").OrderedDict,
    ("_codecs", "encode"): lambda: _latin1_encode,
    ("copy_reg", "_reconstructor"): lambda: _reconstructor,
    ("copyreg", "_reconstructor"): lambda: _reconstructor,
    ("torch._utils", "_rebuild_tensor_v2"): _torch_global("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"): _torch_global("torch._utils", "_rebuild_tensor"),
    ("torch.storage", "_load_from_bytes"): _torch_global("torch.storage", "_load_from_bytes"),
}


def allowed_globals() -> Tuple[Tuple[str, str], ...]:
    """The (module, name) pairs `SafeUnpickler` resolves (chumpy.* is mapped to stand-ins besides these)."""
    return tuple(sorted(_ALLOWED))


class SafeUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves only allowlisted globals (see the module docstring).

    Args:
        file: binary stream positioned at the pickle.
        source: a name for error messages (usually the file path).
    """

    def __init__(self, file: BinaryIO, source: str = "<stream>"):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return chumpy_class(module, name)
        resolve = _ALLOWED.get((module, name))
        if resolve is None:
            raise UnsafeContentError(
                f"{self.source}: refusing to load pickle global {module}.{name}: it is not on decaenv's allowlist "
                "for DECA/FLAME data files",
                hint="this is not a genuine DECA/FLAME file (or it was tampered with): re-download it from the "
                "official source",
            )
        return resolve()

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeContentError(f"{self.source}: refusing a pickle persistent id (not used by DECA/FLAME files)")


def _looks_like_html(head: bytes) -> bool:
    text = head.lstrip()[:64].lower()
    return text.startswith((b"<!doctype", b"<html", b"<head", b"<?xml", b"<")) and not text.startswith(b"<\x00")


def load_pickle(path: os.PathLike, what: str = "file") -> Any:
    """Unpickle a file with `SafeUnpickler` (latin-1 strings, like `pickle.load(f, encoding='latin1')`).

    Raises:
        DataError: the file is missing, empty, truncated, an HTML page or not a pickle.
        UnsafeContentError: the pickle references a global outside the allowlist.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
            fh.seek(0)
            _check_head(path, head, what)
            check_pickle(fh, str(path))
            return SafeUnpickler(fh, str(path)).load()
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}", path=path) from exc
    except _DAMAGE_ERRORS as exc:
        raise DataError(
            f"{what} {path} is damaged or not a pickle ({type(exc).__name__}: {_short(exc)})",
            hint="re-download it",
            path=path,
        ) from exc


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_head(path: Path, head: bytes, what: str) -> None:
    if not head:
        raise DataError(f"{what} {path} is empty", hint="re-download it", path=path)
    if _looks_like_html(head):
        raise DataError(
            f"{what} {path} is an HTML page, not the data file (a login, licence or download page was saved instead)",
            hint="delete it and download it again (decaenv fetch)",
            path=path,
        )


def load_object_npy(path: StrPath, what: str = "file") -> Any:
    """Load an `.npy` file; object arrays (a pickled dict inside) go through `SafeUnpickler`.

    DECA's `landmark_embedding.npy` and `texture_data_256.npy` are 0-d object arrays holding a dict; this
    returns that dict (what `np.load(..., allow_pickle=True)[()]` would, without running arbitrary code).
    Plain numeric `.npy` files are returned as arrays.
    """
    from numpy.lib import format as npformat

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
            fh.seek(0)
            _check_head(path, head, what)
            version = npformat.read_magic(fh)
            reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            shape, _fortran, dtype = reader(fh)  # version 3.0 differs from 2.0 only in the header's encoding
            if not dtype.hasobject:
                return np.load(path, allow_pickle=False)
            check_pickle(fh, str(path))
            array = SafeUnpickler(fh, str(path)).load()
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}", path=path) from exc
    except _DAMAGE_ERRORS as exc:
        raise DataError(
            f"{what} {path} is damaged or not an .npy file ({type(exc).__name__}: {_short(exc)})",
            hint="re-download it",
            path=path,
        ) from exc
    if isinstance(array, np.ndarray) and array.shape == () and array.dtype == object:
        return array[()]
    return array

"""Read the *structure* of pickles, .npy/.npz files and torch checkpoints without executing them.

Content validators need key names, shapes and dtypes, not values. This reader never imports numpy or
torch and never calls a pickled global: the few globals these formats use (numpy's array
reconstruction, torch's tensor rebuild, OrderedDict) are replaced by inert stand-ins that record shape
and dtype; any other global is refused with `UnsafeContentError`. Every pickle is first replayed by
`decaenv.loaders.pickle_limits.check_pickle`, so a reference bomb or a deep nesting is refused in
milliseconds instead of exhausting memory or the stack. So it works on a machine whose torch
is broken, reads a 434 MB checkpoint in milliseconds, and cannot be turned into code execution.
"""

from __future__ import annotations

import ast
import collections
import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from decaenv._typing import StrPath
from decaenv.errors import DataError, UnsafeContentError

MAX_NPY_HEADER = 1 << 16  # numpy's own reader refuses headers past 10,000 characters by default
MAX_PICKLE_BYTES = 64 << 20  # a torch checkpoint's data.pkl (DECA's: 114 kB)
_TORCH_ITEMSIZE = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ComplexDoubleStorage": 16,
    "UntypedStorage": 1,
}


@dataclass
class ArrayInfo:
    """Shape and dtype of an array-like value found in a file.

    Attributes:
        kind: "ndarray" or "tensor". shape: its shape. dtype: numpy descr ('<f8') or torch storage
        name ('FloatStorage'). storage: for tensors, (key, numel) of the backing storage when known.
    """

    kind: str
    shape: Tuple[int, ...]
    dtype: str
    storage: Optional[Tuple[str, int]] = None


class _Dtype:
    def __init__(self, code: str = "", *_args):
        self.code, self.order = str(code), "|"

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) > 1 and isinstance(state[1], str):
            self.order = state[1]

    @property
    def descr(self) -> str:
        order = self.order if self.order in "<>|" else "<"
        return self.code if self.code[:1] in "<>|=" else order + self.code


class _Ndarray:
    """Stand-in for `numpy.ndarray` built by `_reconstruct` + `__setstate__`."""

    def __init__(self, *_args: object) -> None:
        self.shape: Tuple[int, ...] = ()
        self.dtype = _Dtype("?")
        self.items: Optional[List[Any]] = None

    def __setstate__(self, state: Tuple[Any, ...]) -> None:
        if len(state) == 5:
            state = state[1:]
        shape, dtype, _fortran, data = state
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype if isinstance(dtype, _Dtype) else _Dtype(str(dtype))
        if isinstance(data, list):
            self.items = data

    def info(self) -> ArrayInfo:
        return ArrayInfo("ndarray", self.shape, self.dtype.descr)


class _StorageType:
    def __init__(self, name: str):
        self.name = name


class _Storage:
    def __init__(self, type_name: str, key: str, numel: int):
        self.type_name, self.key, self.numel = type_name, key, numel


def _rebuild_tensor(storage, _offset, size, *_rest) -> ArrayInfo:
    if isinstance(storage, _Storage):
        return ArrayInfo("tensor", tuple(int(s) for s in size), storage.type_name, (storage.key, storage.numel))
    return ArrayInfo("tensor", tuple(int(s) for s in size), "unknown")


def _rebuild_parameter(data, *_rest):
    return data


def _load_from_bytes(_payload: bytes) -> _Storage:
    return _Storage("unknown", "", -1)


def _scalar(dtype, _raw=b""):
    return ArrayInfo("ndarray", (), dtype.descr if isinstance(dtype, _Dtype) else str(dtype))


_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "ndarray"): _Ndarray,
    ("numpy", "dtype"): _Dtype,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
}
for _mod in _NUMPY_CORE:
    _ALLOWED[(_mod, "_reconstruct")] = lambda cls, shape, dtype: _Ndarray()
    _ALLOWED[(_mod, "scalar")] = _scalar


class _OutlineUnpickler(pickle.Unpickler):
    """Unpickler whose globals are inert stand-ins; persistent ids become `_Storage` records."""

    def __init__(self, fh, what: str):
        super().__init__(fh, encoding="latin1")
        self.what = what

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _TORCH_ITEMSIZE:
            return _StorageType(name)
        raise UnsafeContentError(
            f"{self.what} refers to {module}.{name}, which a DECA data file never contains; refusing to load it",
            hint="get the file again from its official source",
        )

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and pid and pid[0] == "storage":
            kind = pid[1].name if isinstance(pid[1], _StorageType) else "unknown"
            numel = int(pid[4]) if len(pid) > 4 and isinstance(pid[4], int) else -1
            return _Storage(kind, str(pid[2]), numel)
        raise UnsafeContentError(f"{self.what} holds an unexpected persistent reference", hint="get the file again")


def load_outline(fh, what: str) -> Any:
    """Unpickle one object from `fh` into stand-ins (see the module docstring)."""
    from decaenv.loaders.pickle_limits import check_pickle

    try:
        check_pickle(fh, what)
        return _OutlineUnpickler(fh, what).load()
    except (UnsafeContentError, DataError):
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt/truncated file
        raise DataError(
            f"{what} is not a readable pickle ({type(exc).__name__}: {exc})",
            hint="the file is truncated or corrupt: fetch it again",
        ) from None


# ------------------------------------------------------------------------------------------ .npy/.npz


def read_npy_header(fh, what: str) -> Tuple[Tuple[int, ...], str, bool]:
    """Parse an .npy header: (shape, descr, fortran_order); the stream is left at the data."""
    magic = fh.read(8)
    if len(magic) < 8 or not magic.startswith(b"\x93NUMPY"):
        raise DataError(f"{what} is not a NumPy .npy file", hint="fetch it again")
    major = magic[6]
    size_format = "<H" if major == 1 else "<I"
    raw = fh.read(struct.calcsize(size_format))
    (length,) = struct.unpack(size_format, raw)
    if length > MAX_NPY_HEADER:
        raise DataError(
            f"{what} has a {length:,}-byte .npy header (numpy writes a few hundred)",
            hint="this is not a genuine data file: fetch it again",
        )
    try:
        header = ast.literal_eval(fh.read(length).decode("latin1"))
        shape = tuple(int(d) for d in header["shape"])
        return shape, str(header["descr"]), bool(header["fortran_order"])
    except Exception:  # noqa: BLE001 - any failure to parse means a corrupt header
        raise DataError(f"{what} has a corrupt .npy header", hint="fetch it again") from None


def _itemsize(descr: str) -> int:
    digits = "".join(ch for ch in descr if ch.isdigit())
    return int(digits) if digits else 1


def outline_npy(path: StrPath) -> Any:
    """An `.npy` file's outline: `ArrayInfo` for plain arrays, the (stand-in) object for object arrays.

    Raises:
        DataError: not an .npy file, truncated, or an unreadable pickle.
    """
    what = os.path.basename(path)
    with open(path, "rb") as fh:
        shape, descr, _ = read_npy_header(fh, what)
        if descr.lstrip("<>|=") != "O":
            need = _itemsize(descr)
            for dim in shape:
                need *= dim
            have = os.fstat(fh.fileno()).st_size - fh.tell()
            if have != need:
                raise DataError(
                    f"{what} holds {have} data bytes but its header promises {need}",
                    hint="the file is truncated or corrupt: fetch it again",
                )
            return ArrayInfo("ndarray", shape, descr)
        obj = load_outline(fh, what)
    if isinstance(obj, _Ndarray) and obj.items is not None and shape == () and len(obj.items) == 1:
        return _plain(obj.items[0])
    return _plain(obj)


def _plain(obj: Any) -> Any:
    """Replace stand-ins by `ArrayInfo` recursively (dict/list/tuple kept)."""
    if isinstance(obj, _Ndarray):
        return obj.info()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def outline_npz(path: StrPath) -> Dict[str, ArrayInfo]:
    """Names, shapes and dtypes of the arrays in an `.npz` (headers only; values never read)."""
    what = os.path.basename(path)
    out: Dict[str, ArrayInfo] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as member:
                    shape, descr, _ = read_npy_header(io.BufferedReader(member), f"{what}:{info.filename}")
                out[info.filename[:-4]] = ArrayInfo("ndarray", shape, descr)
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"{what} is not a valid .npz (zip) file: {exc}", hint="the file is truncated or corrupt: fetch it again"
        ) from None
    return out


# --------------------------------------------------------------------------------------------- torch


def outline_torch(path: StrPath) -> Any:
    """The object saved in a `torch.save` file (zip or legacy format), tensors as `ArrayInfo`.

    Checks that every tensor's storage is present with enough bytes (a truncated download fails).
    """
    what = os.path.basename(path)
    if zipfile.is_zipfile(path):
        return _outline_torch_zip(path, what)
    with open(path, "rb") as fh:
        head = fh.read(2)
        fh.seek(0)
        if head[:1] != b"\x80":
            raise DataError(f"{what} is not a torch.save file", hint="fetch it again")
        for _ in range(3):  # magic number, protocol version, sys_info
            load_outline(fh, what)
        obj = load_outline(fh, what)
        keys = load_outline(fh, what)
        if not isinstance(keys, list):
            raise DataError(f"{what} is a truncated legacy torch file", hint="fetch it again")
        need = 0
        for storage in _storages(obj):
            need += max(storage.numel, 0) * _TORCH_ITEMSIZE.get(storage.type_name, 1) + 8
        if os.fstat(fh.fileno()).st_size - fh.tell() < need:
            raise DataError(
                f"{what} is truncated: its tensors need more bytes than the file holds", hint="fetch it again"
            )
    return _plain(obj)


def _outline_torch_zip(path: StrPath, what: str) -> Any:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pkl is None:
                raise DataError(
                    f"{what} is a zip archive but not a torch.save checkpoint (no data.pkl)",
                    hint="fetch DECA's deca_model.tar again; do not unpack or repack it",
                )
            prefix = pkl[: -len("data.pkl")]
            if zf.getinfo(pkl).file_size > MAX_PICKLE_BYTES:
                raise DataError(
                    f"{what}'s data.pkl claims {zf.getinfo(pkl).file_size:,} bytes; a checkpoint's "
                    f"is about 100 kB (limit {MAX_PICKLE_BYTES:,})",
                    hint="get the file again",
                )
            obj = load_outline(io.BytesIO(zf.read(pkl)), what)
            sizes = {i.filename: i.file_size for i in zf.infolist()}
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"{what} is a damaged zip/torch file: {exc}", hint="the download is truncated or corrupt: fetch it again"
        ) from None
    for storage in _storages(obj):
        record = f"{prefix}data/{storage.key}"
        need = storage.numel * _TORCH_ITEMSIZE.get(storage.type_name, 1)
        if sizes.get(record, -1) < need:
            raise DataError(
                f"{what} lacks the data of tensor storage {storage.key}",
                hint="the file is truncated or corrupt: fetch it again",
            )
    return _plain(obj)


def _storages(obj: Any) -> List[_Storage]:
    found: Dict[str, _Storage] = {}

    def walk(value: Any) -> None:
        if isinstance(value, ArrayInfo) and value.storage:
            key, numel = value.storage
            found.setdefault(key, _Storage(value.dtype, key, numel))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(obj)
    return list(found.values())

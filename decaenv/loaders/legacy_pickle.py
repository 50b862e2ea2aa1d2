"""Write pickles that look like the ones DECA's data files were made with, from today's Python (the
synthetic-asset generator writes its files with it; the doctor's FLAME self-test writes a tiny one).

* FLAME's `generic_model.pkl` is a Python 2 pickle (protocol 2): byte strings are Python 2 `str`
  (`BINSTRING` opcodes, no `_codecs.encode`), `set` is `__builtin__.set`, arrays are rebuilt by
  `numpy.core.multiarray._reconstruct`, the sparse regressor is `scipy.sparse.csc.csc_matrix` and
  `shapedirs` is a `chumpy.ch.Ch` object.
* `landmark_embedding.npy` is a protocol-3 pickle inside an `.npy` file, made with numpy 1.x
  (`numpy.core.multiarray`) and holding torch tensors (`torch._utils._rebuild_tensor_v2` +
  `torch.storage._load_from_bytes`).

`LegacyPickler` reproduces those streams: it renames globals (today's module paths to the historical
ones, stand-in classes to the names they impersonate) and, for protocol 2, writes bytes as Python 2
strings. Torch storages are written in torch's legacy format with canonical storage keys, so the output
is byte-identical from run to run (torch would otherwise embed a memory address).
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import struct
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, ClassVar, Dict, Optional, Tuple

#: Today's module paths → the ones the historical files reference.
MODULE_RENAMES = {
    "numpy._core.multiarray": "numpy.core.multiarray",
    "scipy.sparse._csc": "scipy.sparse.csc",
    "scipy.sparse._csr": "scipy.sparse.csr",
}


class LegacyPickler(pickle._Pickler):  # the pure-Python pickler: its hooks can be overridden
    """Pickler writing historical global names (and Python 2 strings for protocol ≤ 2).

    Args:
        file: binary file to write to.
        protocol: 2 (Python 2 files) or 3 (numpy 1.x `np.save`).
        impersonate: `{id(obj): (module, name)}` for stand-in classes written under another name.
    """

    # typeshed describes neither the pure-Python pickler's internals (`proto`, `write`, `memoize`,
    # `save_bytes`) nor its dispatch table's real value type (it says `Unpickler`): declared here.
    if TYPE_CHECKING:
        proto: int

        def write(self, data: bytes) -> int: ...

        def memoize(self, obj: Any) -> None: ...

    dispatch: ClassVar[Dict[type, Callable[..., None]]] = dict(pickle._Pickler.dispatch)

    def __init__(self, file: BinaryIO, protocol: int, impersonate: Optional[Dict[int, Tuple[str, str]]] = None):
        super().__init__(file, protocol=protocol, fix_imports=True)
        self._impersonate = dict(impersonate or {})

    def save_global(self, obj: Any, name: Optional[str] = None) -> None:
        if id(obj) in self._impersonate:
            module, qualname = self._impersonate[id(obj)]
        else:
            module = getattr(obj, "__module__", None) or pickle.whichmodule(obj, name)  # type: ignore[attr-defined]  # not in typeshed
            qualname = name or getattr(obj, "__qualname__", obj.__name__)
            module = MODULE_RENAMES.get(module, module)
        if self.proto < 3:
            module, qualname = _compat_pickle.REVERSE_NAME_MAPPING.get((module, qualname), (module, qualname))
            module = _compat_pickle.REVERSE_IMPORT_MAPPING.get(module, module)
        self.write(pickle.GLOBAL + module.encode("utf-8") + b"\n" + qualname.encode("utf-8") + b"\n")
        self.memoize(obj)

    dispatch[type] = save_global

    def _save_py2_str(self, obj: bytes) -> None:
        if self.proto >= 3:
            return pickle._Pickler.save_bytes(self, obj)  # type: ignore[attr-defined]  # not in typeshed
        size = len(obj)
        if size < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([size]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", size) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str

    def reducer_override(self, obj: Any) -> Any:
        storage_reduce = _torch_storage_reduce(obj)
        return storage_reduce if storage_reduce is not None else NotImplemented


def dumps(obj: Any, protocol: int, impersonate: Optional[Dict[int, Tuple[str, str]]] = None) -> bytes:
    """Pickle `obj` with `LegacyPickler` and return the bytes."""
    buf = io.BytesIO()
    LegacyPickler(buf, protocol, impersonate).dump(obj)
    return buf.getvalue()


def _torch_storage_reduce(obj: Any) -> Optional[Tuple[Callable[[bytes], Any], Tuple[bytes]]]:
    """`(torch.storage._load_from_bytes, (payload,))` for a torch TypedStorage, else None."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.storage.TypedStorage):
        return None
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_module=_CanonicalKeys(), _use_new_zipfile_serialization=False)
    return torch.storage._load_from_bytes, (buf.getvalue(),)


class _CanonicalKeys:
    """A `pickle_module` for torch's legacy `torch.save` that replaces storage keys (memory addresses)
    by "0", "1", ... in first-seen order, making the payload deterministic."""

    __name__ = "decaenv_canonical_keys"  # torch.save reads pickle_module.__name__

    def __init__(self) -> None:
        self.keys: Dict[str, str] = {}
        outer = self

        class Pickler(pickle._Pickler):
            def save_pers(self, pid: Any) -> None:
                if isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage":
                    key = outer.keys.setdefault(pid[2], str(len(outer.keys)))
                    pid = pid[:2] + (key,) + pid[3:]
                super().save_pers(pid)  # type: ignore[misc]  # typeshed lacks _Pickler.save_pers

        self.Pickler = Pickler

    def dump(self, obj: Any, file: BinaryIO, protocol: Optional[int] = None) -> None:
        if isinstance(obj, list) and obj and all(k in self.keys for k in obj):
            obj = [self.keys[k] for k in obj]
        pickle.dump(obj, file, protocol=protocol)


class ChumpyCh:
    """Throw-away stand-in written as `chumpy.ch.Ch` (a leaf Ch: the array lives in state key 'x')."""

    def __init__(self, x: Any):
        # chumpy's own bookkeeping keys, as Ch.__getstate__ leaves them for a leaf object.
        self.__dict__.update(
            {
                "_depends_on_deps": {},
                "_dirty_vars": {"x"},
                "_itr": None,
                "_make_dense": False,
                "_make_sparse": False,
                "x": x,
            }
        )

"""Shim: a stand-in `chumpy` package, only where chumpy is not installed, so that unpickling FLAME works.

DECA's `FLAME.py` reads `generic_model.pkl` with plain `pickle.load`, which imports `chumpy.ch.Ch` because
FLAME stores `shapedirs` as a chumpy array; chumpy 0.70 cannot even be built under pip's default build
isolation (FM15). This shim registers tiny `chumpy`, `chumpy.ch`, `chumpy.ch_ops` and `chumpy.reordering`
modules in `sys.modules` whose classes only keep the pickled state: `np.array(obj)` gives a leaf `Ch`'s data
(what DECA's `to_np` does); expression nodes and the rest of chumpy's API raise a clear error. Nothing is
registered when a real chumpy is installed (then `inspect-getargspec` and `numpy-aliases` make it import).
decaenv's own loader never needs this (`decaenv.loaders.safe_pickle` maps chumpy to a stand-in privately).
Upstream: https://github.com/mattloper/chumpy/issues/55
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any, Dict

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import Patcher

MODULES = ("chumpy", "chumpy.ch", "chumpy.ch_ops", "chumpy.reordering")


class Ch:
    """Stand-in for `chumpy.ch.Ch`: keeps the pickled state; a leaf's data is `.r` / `np.array(obj)`."""

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def r(self) -> Any:
        """The data of a leaf Ch as a numpy array."""
        import numpy as np

        if "x" not in self.__dict__:
            raise TypeError(f"{type(self).__module__}.{type(self).__name__} is a chumpy expression; decaenv's "
                            "chumpy stand-in can only give the data of leaf arrays (install chumpy for more)")
        x = self.__dict__["x"]
        return x.r if isinstance(x, Ch) else np.asarray(x)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        r = self.r
        return r if dtype is None else r.astype(dtype)

    @property
    def shape(self) -> Any:
        return self.r.shape

    @property
    def dtype(self) -> Any:
        return self.r.dtype

    def __len__(self) -> int:
        return len(self.r)

    def __getitem__(self, key: Any) -> Any:
        return self.r[key]


Ch.__module__ = "chumpy.ch"


def _class_for(module: str, name: str) -> type:
    return type(name, (Ch,), {"__module__": module})


def _module(name: str) -> types.ModuleType:
    mod = types.ModuleType(name, f"decaenv's stand-in for {name} (unpickling FLAME models only)")
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=name == "chumpy")
    classes: Dict[str, type] = {"Ch": Ch} if name in ("chumpy", "chumpy.ch") else {}

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if name == "chumpy":
            raise AttributeError(f"chumpy.{attr}: decaenv's chumpy stand-in supports unpickling only "
                                 "(install chumpy for its API)")
        return classes.setdefault(attr, _class_for(name, attr))

    mod.__getattr__ = __getattr__  # type: ignore[attr-defined]
    if name == "chumpy":
        mod.__path__ = []  # a package: submodules resolve only to the stand-ins registered beside it
    mod.__dict__.update(classes)
    return mod


def stand_in_modules() -> Dict[str, types.ModuleType]:
    """Fresh stand-in modules by name (the package has its submodules as attributes)."""
    mods = {name: _module(name) for name in MODULES}
    for name in MODULES[1:]:
        setattr(mods["chumpy"], name.split(".", 1)[1], mods[name])
    return mods


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    if any(name in sys.modules for name in MODULES):
        return  # a real chumpy (or a previous stand-in) is already imported
    for name, module in stand_in_modules().items():
        patcher.setitem(sys.modules, name, module)


PATCH = Patch(
    id="chumpy-stand-in",
    title="chumpy stand-in for unpickling FLAME (only when chumpy is not installed)",
    reason="DECA unpickles generic_model.pkl with plain pickle, which needs chumpy (No module named 'chumpy'); "
           "chumpy 0.70 does not build under pip's build isolation and is unmaintained",
    link="https://github.com/mattloper/chumpy/issues/55",
    target=Target("chumpy", "chumpy"),
    needed_for=versions(),
    apply=_apply,
    when_absent=True,
)

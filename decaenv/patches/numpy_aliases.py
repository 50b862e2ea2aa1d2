"""Shim: the numpy aliases old code imports (`np.int`, `np.float`, `np.bool`, ..., `np.float_`, `np.NaN`).

numpy 1.24 removed the builtin-type aliases and numpy 2.0 a second batch; chumpy 0.70 does
`from numpy import bool, int, float, complex, object, unicode, str, nan, inf` and DECA's own code uses
`np.int`. Only names numpy does NOT define are added: numpy 2 re-introduced `np.bool` as its own boolean
scalar type, and overwriting it (with the builtin `bool`) breaks `numpy.ma`.
Upstream: https://github.com/mattloper/chumpy/issues/55, https://numpy.org/devdocs/release/1.24.0-notes.html
"""

from __future__ import annotations

import builtins
import math
import warnings
from typing import Any, Callable, List, Tuple

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import NOTSET, Patcher

#: (name, value given numpy) rows: what each alias meant before it was removed.
ALIASES: Tuple[Tuple[str, Callable[[Any], Any]], ...] = (
    # removed in numpy 1.24 (deprecated in 1.20): builtin types
    ("bool", lambda np: np.bool_),  # what numpy 2 itself defines np.bool as
    ("int", lambda np: builtins.int),
    ("float", lambda np: builtins.float),
    ("complex", lambda np: builtins.complex),
    ("object", lambda np: builtins.object),
    ("str", lambda np: builtins.str),
    ("unicode", lambda np: builtins.str),
    # removed in numpy 2.0
    ("float_", lambda np: np.float64),
    ("complex_", lambda np: np.complex128),
    ("cfloat", lambda np: np.complex128),
    ("singlecomplex", lambda np: np.complex64),
    ("longfloat", lambda np: np.longdouble),
    ("longcomplex", lambda np: np.clongdouble),
    ("clongfloat", lambda np: np.clongdouble),
    ("unicode_", lambda np: np.str_),
    ("string_", lambda np: np.bytes_),
    ("bool8", lambda np: np.bool_),
    ("int0", lambda np: np.intp),
    ("uint0", lambda np: np.uintp),
    ("object0", lambda np: np.object_),
    ("str0", lambda np: np.str_),
    ("bytes0", lambda np: np.bytes_),
    ("void0", lambda np: np.void),
    ("Inf", lambda np: np.inf),
    ("Infinity", lambda np: np.inf),
    ("infty", lambda np: np.inf),
    ("PINF", lambda np: np.inf),
    ("NINF", lambda np: -np.inf),
    ("NaN", lambda np: np.nan),
    ("NAN", lambda np: np.nan),
    ("PZERO", lambda np: 0.0),
    ("NZERO", lambda np: -0.0),
    ("round_", lambda np: np.round),
    ("product", lambda np: np.prod),
    ("cumproduct", lambda np: np.cumprod),
    ("sometrue", lambda np: np.any),
    ("alltrue", lambda np: np.all),
    ("math", lambda np: math),
)


def missing(np: Any, name: str) -> bool:
    """True when numpy does not define `name` (numpy's own deprecation warnings are silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            getattr(np, name)
        except AttributeError:
            return True
    return False


def missing_aliases(np: Any) -> List[str]:
    """The alias names this numpy lacks (the ones the shim adds)."""
    return [name for name, _ in ALIASES if missing(np, name)]


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    import numpy as np

    for name, value in ALIASES:
        if missing(np, name) and vars(np).get(name, NOTSET) is NOTSET:
            patcher.setattr(np, name, value(np), raising=False)


PATCH = Patch(
    id="numpy-aliases",
    title="numpy aliases removed in numpy 1.24 / 2.0 (only the missing ones)",
    reason="chumpy 0.70 does `from numpy import bool, int, float, ...` and DECA uses np.int: numpy 1.24 removed "
    "the builtin-type aliases, numpy 2.0 np.float_, np.NaN and others (ImportError / AttributeError)",
    link="https://github.com/mattloper/chumpy/issues/55",
    target=Target("numpy", "numpy"),
    needed_for=versions(minimum="1.24"),
    apply=_apply,
)

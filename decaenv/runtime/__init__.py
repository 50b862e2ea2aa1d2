"""DECA inference runtime (torch): `DECA`, its config and the `reconstruct` pipeline.

Importing this package imports nothing heavy; the names below load their module (and torch) on first use:

    from decaenv.runtime import DECA
    deca = DECA("path/to/data", device="auto")
    codedict = deca.encode(images)
    opdict, visdict = deca.decode(codedict)
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DECA": "decaenv.runtime.deca",
    "DecaConfig": "decaenv.runtime.config",
    "get_cfg_defaults": "decaenv.runtime.config",
    "cfg": "decaenv.runtime.config",
    "TestData": "decaenv.runtime.datasets",
    "ReconstructOptions": "decaenv.runtime.run_types",
    "reconstruct": "decaenv.runtime.pipeline",
    "read_codes": "decaenv.runtime.table",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'decaenv.runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

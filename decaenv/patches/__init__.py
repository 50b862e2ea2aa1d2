"""Reversible compatibility shims for users' own DECA code on today's Python, numpy, torch and face_alignment.

One module per shim (`inspect_getargspec`, `numpy_aliases`, `chumpy_stand_in`, `face_alignment_api`,
`face_alignment_device`, `torch_load`, `torch_cross`, `skimage_multichannel`), each a `Patch` row in
`registry.PATCHES` with an id, a reason and upstream link, and a version predicate. Every change goes through
one undo stack (`Patcher`). Nothing is applied at import:

    with decaenv.patches.active("numpy-aliases", "inspect-getargspec"):
        import chumpy

or `apply_all()` / `undo_all()` for a whole process. `decaenv exec` applies them in a child process
(`decaenv.patches.launcher`); `decaenv patch` rewrites a DECA checkout instead (`decaenv.patches.rewrite`).
Importing this package imports no numpy, torch or face_alignment.
"""

from decaenv.patches import registry
from decaenv.patches._manager import active, active_ids, apply, apply_all, is_active, undo, undo_all
from decaenv.patches._model import Environment, Patch, PatchConfig, Target
from decaenv.patches._patcher import NOTSET, Change, Patcher

__all__ = [
    "registry",
    "active",
    "active_ids",
    "apply",
    "apply_all",
    "is_active",
    "undo",
    "undo_all",
    "Environment",
    "Patch",
    "PatchConfig",
    "Target",
    "NOTSET",
    "Change",
    "Patcher",
]

"""Applying and undoing shims: the process-wide undo stack and the set of active shims.

Nothing is applied at import. `active(*ids)` applies the shims that are needed and not yet active, and
undoes exactly those when its block exits (also on exceptions); `apply_all()`/`undo_all()` are the explicit
pair for a process that wants them for its whole life (the `decaenv exec` child). Applying an active shim
again is a no-op.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator, List, Optional

from decaenv.patches import registry
from decaenv.patches._active import ACTIVE as _ACTIVE
from decaenv.patches._active import LOCK as _LOCK
from decaenv.patches._active import PATCHER, active_ids, is_active
from decaenv.patches._model import Environment, PatchConfig

__all__ = ["PATCHER", "active", "active_ids", "apply", "apply_all", "is_active", "undo", "undo_all"]

log = logging.getLogger("decaenv")


def apply(*ids: str, config: Optional[PatchConfig] = None, env: Optional[Environment] = None,
          force: bool = False) -> List[str]:
    """Apply the given shims; returns the ids applied by this call.

    A shim that is already active, or not needed for the versions in `env` (unless `force`), is skipped.
    If a shim fails half-way, its own changes are undone and the exception propagates.

    Raises:
        UsageError: an unknown id.
    """
    patches = [registry.get(i) for i in ids]
    config = config or PatchConfig()
    env = env or Environment()
    applied = []
    with _LOCK:
        for patch in patches:
            if patch.id in _ACTIVE:
                continue
            needed, why = patch.needed(env)
            if not needed and not force:
                log.debug("shim %s not applied: %s", patch.id, why)
                continue
            try:
                with PATCHER.owned_by(patch.id):
                    patch.apply(PATCHER, config)
            except BaseException:
                PATCHER.undo(owner=patch.id)
                raise
            _ACTIVE[patch.id] = config
            applied.append(patch.id)
            log.debug("shim %s applied (%s)", patch.id, why)
    return applied


def undo(*ids: str) -> List[str]:
    """Undo the given shims where active, newest first; returns the ids undone."""
    return _undo(set(ids))


def _undo(ids: Optional[set]) -> List[str]:
    with _LOCK:
        chosen = [i for i in reversed(list(_ACTIVE)) if ids is None or i in ids]
        for patch_id in chosen:
            PATCHER.undo(owner=patch_id)
            del _ACTIVE[patch_id]
            log.debug("shim %s undone", patch_id)
        return chosen


def apply_all(config: Optional[PatchConfig] = None, env: Optional[Environment] = None) -> List[str]:
    """Apply every registered shim that is needed here; returns the ids applied now."""
    return apply(*registry.ids(), config=config, env=env)


def undo_all() -> List[str]:
    """Undo every active shim, newest first."""
    return _undo(None)


@contextlib.contextmanager
def active(*ids: str, config: Optional[PatchConfig] = None, env: Optional[Environment] = None,
           force: bool = False) -> Iterator[List[str]]:
    """Context manager: shims applied inside the block, undone when it exits (also on exceptions).

    With no ids, every registered shim that is needed here. Yields the ids this block applied (shims that
    were already active stay active afterwards).

    Example:
        with decaenv.patches.active("numpy-aliases", "inspect-getargspec"):
            import chumpy
    """
    if not ids:
        ids = registry.ids()
    applied = apply(*ids, config=config, env=env, force=force)
    try:
        yield applied
    finally:
        undo(*applied)

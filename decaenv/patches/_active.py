"""The shims applied in this process: the one undo stack every change goes through and the applied ids.

Below both `registry` (which reports "active") and `_manager` (which applies and undoes), so neither
imports the other lazily.
"""

from __future__ import annotations

import threading
from typing import Dict, Tuple

from decaenv.patches._model import PatchConfig
from decaenv.patches._patcher import Patcher

PATCHER = Patcher()
ACTIVE: Dict[str, PatchConfig] = {}  # id -> config it was applied with, in application order
LOCK = threading.RLock()


def active_ids() -> Tuple[str, ...]:
    """Ids of the shims applied in this process, in application order."""
    with LOCK:
        return tuple(ACTIVE)


def is_active(patch_id: str) -> bool:
    """True when the shim is applied in this process."""
    return patch_id in ACTIVE

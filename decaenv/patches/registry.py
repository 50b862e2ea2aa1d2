"""The registry of compatibility shims (one row per shim, six-style) and their status.

`decaenv patches list` and the doctor's compat checks read `status_all()`: for each shim its id, reason,
upstream link and state — "active" (applied in this process), "needed" (the installed versions need it) or
"not needed" — with a one-line detail naming the version that decided it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

from decaenv.errors import UsageError
from decaenv.patches import (
    chumpy_stand_in,
    face_alignment_api,
    face_alignment_device,
    inspect_getargspec,
    numpy_aliases,
    pytorch3d_stand_in,
    skimage_multichannel,
    standard_rasterizer,
    torch_cross,
    torch_load,
)
from decaenv.patches._active import is_active
from decaenv.patches._model import Environment, Patch

#: Every shim, in the order `decaenv exec` applies them.
PATCHES: Tuple[Patch, ...] = (
    inspect_getargspec.PATCH,
    numpy_aliases.PATCH,
    chumpy_stand_in.PATCH,
    face_alignment_api.PATCH,
    face_alignment_device.PATCH,
    torch_load.PATCH,
    torch_cross.PATCH,
    skimage_multichannel.PATCH,
    standard_rasterizer.PATCH,
    pytorch3d_stand_in.PATCH,
)
_BY_ID: Dict[str, Patch] = {p.id: p for p in PATCHES}

ACTIVE, NEEDED, NOT_NEEDED = "active", "needed", "not needed"


@dataclass(frozen=True)
class PatchStatus:
    """What `decaenv patches list` shows for one shim.

    Attributes:
        id, title, reason, link: from the shim.
        package: the distribution it concerns ("numpy", "python", ...).
        version: installed version of that package (None when not installed).
        state: "active", "needed" or "not needed".
        detail: one line: why (e.g. "numpy 2.4.6", "face-alignment is not installed").
    """

    id: str
    title: str
    reason: str
    link: str
    package: str
    version: Optional[str]
    state: str
    detail: str

    def to_json(self) -> Dict[str, Optional[str]]:
        return asdict(self)


def ids() -> Tuple[str, ...]:
    """All shim ids, in application order."""
    return tuple(_BY_ID)


def get(patch_id: str) -> Patch:
    """The shim with this id.

    Raises:
        UsageError: no such shim.
    """
    try:
        return _BY_ID[patch_id]
    except KeyError:
        raise UsageError(f"unknown shim {patch_id!r} (known: {', '.join(_BY_ID)})",
                         hint="run `decaenv patches list`") from None


def status(patch: Patch, env: Optional[Environment] = None) -> PatchStatus:
    """The state of one shim in this process for the versions in `env` (default: the real ones)."""
    env = env or Environment()
    needed, why = patch.needed(env)
    version = env.version(patch.target)
    state = ACTIVE if is_active(patch.id) else NEEDED if needed else NOT_NEEDED
    return PatchStatus(id=patch.id, title=patch.title, reason=patch.reason, link=patch.link,
                       package=patch.target.dist, version=None if version is None else str(version),
                       state=state, detail=why)


def status_all(env: Optional[Environment] = None) -> List[PatchStatus]:
    """`status` of every shim, in registry order (one `Environment`, so each version is read once)."""
    env = env or Environment()
    return [status(p, env) for p in PATCHES]

"""Shim: `face_alignment.LandmarksType._2D/_2halfD/_3D`, renamed `TWO_D/TWO_HALF_D/THREE_D` in 1.3.5.

DECA's `decalib/datasets/detectors.py` (and EMOCA, PIXIE) call `FaceAlignment(LandmarksType._2D, ...)`,
which fails with `AttributeError: _2D`. `LandmarksType` is an Enum: the old names are added as *aliases* of
the new members (so `LandmarksType._2D is LandmarksType.TWO_D`, iteration and values are unchanged), both as
class attributes and in the Enum's member map (`LandmarksType["_2D"]`), each through the Patcher.
Upstream: https://github.com/yfeng95/DECA/issues/192
"""

from __future__ import annotations

import enum
from typing import Any, List, Tuple

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import Patcher

#: (old name, new name) pairs.
RENAMES: Tuple[Tuple[str, str], ...] = (("_2D", "TWO_D"), ("_2halfD", "TWO_HALF_D"), ("_3D", "THREE_D"))


def missing_aliases(landmarks_type: Any) -> List[str]:
    """Old names this `LandmarksType` lacks although it has the new member."""
    members = getattr(landmarks_type, "__members__", {})
    return [old for old, new in RENAMES if new in members and old not in members and old not in vars(landmarks_type)]


def add_aliases(patcher: Patcher, landmarks_type: Any) -> List[str]:
    """Add the missing old names to an Enum class as aliases of the new members; returns the names added."""
    added = missing_aliases(landmarks_type)
    for old in added:
        member = landmarks_type[dict(RENAMES)[old]]
        patcher.setattr(landmarks_type, old, member, raising=False)
        if isinstance(landmarks_type, enum.EnumMeta):
            # The member map is what `LandmarksType["_2D"]` and `__members__` read; undo runs in reverse,
            # so the map entry goes before the attribute (an Enum refuses to delete a name it maps).
            patcher.setitem(landmarks_type._member_map_, old, member)
    return added


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    import face_alignment

    add_aliases(patcher, face_alignment.LandmarksType)


PATCH = Patch(
    id="face-alignment-api",
    title="face_alignment LandmarksType._2D/_2halfD/_3D aliases",
    reason="face-alignment >= 1.3.5 renamed LandmarksType._2D to TWO_D (also _3D, _2halfD); DECA's "
    "detectors.py still uses _2D (AttributeError: _2D)",
    link="https://github.com/yfeng95/DECA/issues/192",
    target=Target("face-alignment", "face_alignment"),
    needed_for=versions(minimum="1.3.5"),
    apply=_apply,
)

"""The `--save` kinds and their parsing, apart from the exporter (`decaenv.runtime.export` imports torch; a run
decides what it writes, and whether anything is left to do, before it needs torch)."""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from decaenv.errors import UsageError
from decaenv.runtime import writers

SAVE_KINDS = ("vis", "obj", "detail-obj", "kpt", "depth", "mat", "images", "codes")
#: Kinds beyond DECA's (not in "all"): mesh formats (runtime/mesh_kinds.py) and run-level outputs.
EXTRA_KINDS = ("detail-uv", "glb", "ply", "video", "report", "table")  # table: runtime/table.py (pyarrow)


def parse_save(value: str) -> Tuple[str, ...]:
    """`--save` comma list → kinds in canonical order ("all" = every kind, "none" = nothing).

    Raises:
        UsageError: an unknown kind.
    """
    parts = [p.strip().lower() for p in (value or "").split(",") if p.strip()]
    if parts == ["none"]:
        return ()
    known = SAVE_KINDS + EXTRA_KINDS
    unknown = [p for p in parts if p not in known and p != "all"]
    if unknown:
        raise UsageError(f"unknown --save kind {', '.join(unknown)}", hint=f"use a comma list of {', '.join(known)}")
    if "all" in parts:
        parts += SAVE_KINDS
    return tuple(k for k in known if k in parts)


def expected_files(kinds: Sequence[str], name: str, render_orig: bool, use_tex: bool) -> Dict[str, bool]:
    """The files an item will have (for --skip-existing): {relative name: inside `<name>/`?}."""
    out: Dict[str, bool] = {}
    if "kpt" in kinds:
        out.update({f"{name}_kpt2d.txt": True, f"{name}_kpt3d.txt": True})
    if "depth" in kinds:
        out[f"{name}_depth.jpg"] = True
    if "obj" in kinds:
        out.update({f"{name}.obj": True, f"{name}.mtl": True, f"{name}.png": True, f"{name}_normals.png": True})
    if "detail-obj" in kinds:
        out[f"{name}_detail.obj"] = True
    if "mat" in kinds:
        out[f"{name}.mat"] = True
    if "codes" in kinds:
        out.update({f"{name}_codes.npz": True, f"{name}_codes.json": True})
    if "vis" in kinds:
        out[f"{name}_vis.jpg"] = False
        if render_orig:
            out[f"{name}_vis_original_size.jpg"] = False
    if any(k in kinds for k in EXTRA_KINDS):
        from decaenv.runtime.mesh_kinds import extra_expected

        out.update(extra_expected(kinds, name))
    if "images" in kinds:
        keys: List[str] = [
            k for k in writers.IMAGE_KEYS if k != "albedo_images" and (use_tex or k != "rendered_images")
        ]
        for key in keys:
            out[f"{name}_{key}.jpg"] = True
            if render_orig:
                out[f"orig_{name}_{key}.jpg"] = True
    return out

"""What the doctor asks decaenv's other subsystems: the rasterizer's backends and build state, the
compatibility shims' status, the data manifest's verification (the build probe itself is in
`probes_build`).

Each function returns plain data. Functions used inside the probe worker (`rasterizer_status`,
`patches_status`) may import torch; the others must not.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from decaenv.errors import DecaenvError


# -- rasterizer (worker side) -------------------------------------------------------------------------------
RASTER_BACKENDS = ("cuda", "cpu", "pytorch3d", "torch")


def rasterizer_status() -> Dict[str, Any]:
    """Usable rasterizer backends, the automatic choice per device and the compiled extension's state.

    Returns:
        {"backends": {name: {"usable", "reason"}}, "choice": {"cpu": name, "cuda": name|None},
         "reasons": {device: why}, "extension": {...}} with the rasterizer package's backend names
        ("cuda", "cpu" = compiled extension, "pytorch3d", "torch" = pure PyTorch).
    """
    import torch

    from decaenv.runtime.rasterizer import backends, extension

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    table: Dict[str, Dict[str, Any]] = {}
    for name in RASTER_BACKENDS:
        answers = [backends.availability(name, d) for d in (["cuda"] if name == "cuda" else devices)]
        usable = any(ok for ok, _why in answers)
        table[name] = {"usable": usable, "reason": next((why for ok, why in answers if ok == usable), "")}
    choice, reasons = {"cpu": None, "cuda": None}, {}
    for device in devices:
        picked = backends.choose_backend(device, "auto")
        choice[device], reasons[device] = picked.name, picked.reason
    return {"backends": table, "choice": choice, "reasons": reasons,
            "extension": _extension_summary(extension.extension_status())}


def _extension_summary(status: Any) -> Dict[str, Any]:
    variants = {name: {"built": v.built, "usable": v.usable, "problem": v.problem, "path": v.path}
                for name, v in status.variants.items()}
    last = status.last_error or {}
    diagnosis = last.get("diagnosis") or {}
    return {"summary": status.summary(), "built": status.built, "variants": variants, "key": status.key,
            "build_root": status.build_root, "load_error": status.load_error,
            "build_in_progress": status.build_in_progress,
            "last_error": {"variant": last.get("variant"), "at": last.get("at"), "log": last.get("log"),
                           "cause": diagnosis.get("cause"), "fix": diagnosis.get("fix"),
                           "first_error": diagnosis.get("first_error")} if last else None}


# -- compatibility shims (worker side) ----------------------------------------------------------------------
def patches_status() -> Dict[str, Any]:
    """Each shim of `decaenv.patches.registry`: id, reason, link, state (needed / not needed / active)."""
    from decaenv.patches.registry import status_all

    rows = []
    for st in status_all():
        rows.append({"id": st.id, "title": st.title, "reason": st.reason, "link": st.link, "package": st.package,
                     "version": st.version, "state": st.state, "detail": st.detail,
                     "needed": st.state != "not needed", "active": st.state == "active"})
    return {"patches": rows}


# -- data manifest (doctor process; no torch) ---------------------------------------------------------------
def manifest_status(data_dir: str, hash_only: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """Verify every manifest file in `data_dir` with `decaenv.fetch`'s own `verify_entry`: size, sha256 and the
    content validator that `decaenv fetch` and the runtime use (hashes and validator results come from its
    stat-keyed cache, so repeated calls are cheap). Files named in `hash_only` skip the content check.

    Returns:
        {"files": [{"id", "dest", "status", "detail", "kind", "required"}], "manifest": origin} (or
        {"error": message, "files": []} when the manifest cannot be read);
        status is one of verified/present/missing/size-mismatch/hash-mismatch/hash-unknown/invalid.
    """
    from decaenv.fetch.manifest import load_manifest
    from decaenv.fetch.status import verify_entry

    try:
        manifest = load_manifest()
    except DecaenvError as exc:
        return {"error": exc.one_line(), "files": []}
    files = []
    for entry in manifest.entries:
        if not entry.applies():  # e.g. the 2DFAN4 file of a face_alignment release that is not installed
            continue
        st = verify_entry(entry, data_dir, level="hash" if entry.dest in hash_only else "content")
        kind = "manual" if entry.manual_only else (entry.sources[0].kind if entry.sources else "")
        files.append({"id": entry.id, "dest": entry.dest, "status": st.status, "detail": st.detail,
                      "kind": kind, "required": bool(entry.default)})
    return {"files": files, "manifest": getattr(manifest, "origin", "")}

"""The doctor's seams to the other parts of decaenv: rasterizer backends and build, compatibility shims,
the data manifest and its verification, fetching.

Each function returns plain data and degrades to `{"api": False, "reason": ...}` (or None) when the part it
talks to is not installed, so the doctor works in every build of decaenv. Functions used inside the probe
worker (`rasterizer_status`, `patches_status`, `rasterizer_build_probe`) may import torch; the others must not.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any, Dict, Optional, Tuple

from decaenv.errors import DecaenvError


def _missing(module: str, exc: BaseException) -> Dict[str, Any]:
    return {"api": False, "reason": f"{module} is not part of this decaenv ({type(exc).__name__}: {exc})"}


# -- rasterizer (worker side) -------------------------------------------------------------------------------
RASTER_BACKENDS = ("cuda", "cpu", "pytorch3d", "torch")


def rasterizer_status() -> Dict[str, Any]:
    """Usable rasterizer backends, the automatic choice per device and the compiled extension's state.

    Returns:
        {"api": bool, "backends": {name: {"usable", "reason"}}, "choice": {"cpu": name, "cuda": name|None},
         "reasons": {device: why}, "extension": {...}} with the rasterizer package's backend names
        ("cuda", "cpu" = compiled extension, "pytorch3d", "torch" = pure PyTorch).
    """
    import torch

    try:
        from decaenv.runtime.rasterizer import backends, extension
    except ImportError as exc:
        status = _missing("decaenv.runtime.rasterizer", exc)
        status["backends"] = {"torch": {"usable": True, "reason": "pure torch (always available with torch)"}}
        status["choice"] = {"cpu": "torch", "cuda": "torch" if torch.cuda.is_available() else None}
        return status
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
    return {"api": True, "backends": table, "choice": choice, "reasons": reasons,
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


def rasterizer_build_probe(scratch: str, timeout: float = 400.0) -> Optional[Dict[str, Any]]:
    """Build decaenv's real rasterizer sources into `scratch` with the rasterizer package's own build (worker
    side): CPU, plus CUDA when torch has CUDA and a toolkit is found. None when that package is absent (the
    doctor's minimal probe is built instead). Nothing is written outside `scratch`."""
    try:
        from decaenv.runtime.rasterizer.builder import build
    except ImportError:
        return None
    result = build(root=scratch, timeout=timeout, lock_timeout=60.0)
    out: Dict[str, Any] = {"sources": "decaenv's rasterizer (decaenv/runtime/csrc)", "api": True, "cuda": None,
                           "cuda_skipped": None, "compiler": os.environ.get("CXX", "c++")}
    for variant in result.variants:
        diagnosis = asdict(variant.diagnosis) if variant.diagnosis is not None else None
        if variant.status == "skipped":
            out[f"{variant.variant}_skipped"] = diagnosis["cause"] if diagnosis else "skipped"
            continue
        out[variant.variant] = {"target": variant.variant, "ok": variant.ok, "status": variant.status,
                                "seconds": variant.seconds, "diagnosis": diagnosis,
                                "verification": _verification_line(variant.verification),
                                "log": _tail(variant.log)}
    return out


def _verification_line(verification: Dict[str, Any]) -> str:
    checks = verification.get("checks") if isinstance(verification, dict) else None
    if not checks:
        return ""
    parts = [f"{c.get('device')}: {c.get('detail') or ('identical' if c.get('identical') else 'differs')}"
             for c in checks]
    return "checked against the reference rasterizer — " + "; ".join(parts)


def _tail(path: Optional[str], limit: int = 20000) -> str:
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return ""
    return text[-limit:]


# -- compatibility shims (worker side) ----------------------------------------------------------------------
def patches_status() -> Dict[str, Any]:
    """Each shim of `decaenv.patches.registry`: id, reason, link, state (needed / not needed / active)."""
    try:
        from decaenv.patches.registry import status_all
    except ImportError as exc:
        return _missing("decaenv.patches", exc)
    rows = []
    for st in status_all():
        rows.append({"id": st.id, "title": st.title, "reason": st.reason, "link": st.link, "package": st.package,
                     "version": st.version, "state": st.state, "detail": st.detail,
                     "needed": st.state != "not needed", "active": st.state == "active"})
    return {"api": True, "patches": rows}


# -- data manifest (doctor process; no torch) ---------------------------------------------------------------
def manifest_status(data_dir: str, hash_only: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """Verify every manifest file in `data_dir` with `decaenv.fetch`'s own `verify_entry`: size, sha256 and the
    content validator that `decaenv fetch` and the runtime use (hashes and validator results come from its
    stat-keyed cache, so repeated calls are cheap). Files named in `hash_only` skip the content check.

    Returns:
        {"api": True, "files": [{"id", "dest", "status", "detail", "kind", "required"}]} or {"api": False, ...};
        status is one of verified/present/missing/size-mismatch/hash-mismatch/hash-unknown/invalid.
    """
    try:
        from decaenv.fetch.manifest import load_manifest
        from decaenv.fetch.status import verify_entry
    except ImportError as exc:
        return _missing("decaenv.fetch", exc)
    try:
        manifest = load_manifest()
    except DecaenvError as exc:
        return {"api": True, "error": exc.one_line(), "files": []}
    files = []
    for entry in manifest.entries:
        if not entry.applies():  # e.g. the 2DFAN4 file of a face_alignment release that is not installed
            continue
        st = verify_entry(entry, data_dir, level="hash" if entry.dest in hash_only else "content")
        kind = "manual" if entry.manual_only else (entry.sources[0].kind if entry.sources else "")
        files.append({"id": entry.id, "dest": entry.dest, "status": st.status, "detail": st.detail,
                      "kind": kind, "required": bool(entry.default)})
    return {"api": True, "files": files, "manifest": getattr(manifest, "origin", "")}

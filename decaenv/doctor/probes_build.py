"""The build probe (runs inside the probe worker): build decaenv's rasterizer sources with the rasterizer's
own build (`decaenv.runtime.rasterizer.builder.build`, the one `decaenv build` runs) into a throw-away
folder, and return each variant's outcome, diagnosis and log tail.

Nothing outside the scratch folder is written: `TORCH_EXTENSIONS_DIR`, the user's caches and decaenv's own
build folder are untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict
from typing import Any, Dict, Optional, cast

from decaenv.doctor.contracts import BuildSection


def _verification_line(verification: Dict[str, Any]) -> str:
    checks = verification.get("checks") if isinstance(verification, dict) else None
    if not checks:
        return ""
    parts = [
        f"{c.get('device')}: {c.get('detail') or ('identical' if c.get('identical') else 'differs')}" for c in checks
    ]
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


def build_probe(scratch: str, timeout: float = 400.0) -> BuildSection:
    """Build decaenv's rasterizer (CPU, plus CUDA when torch has CUDA and a toolkit is found) into `scratch`.

    Returns:
        {"sources", "compiler", "cpu": entry|None, "cuda": entry|None, "cpu_skipped", "cuda_skipped"} where
        an entry is {"target", "ok", "status", "seconds", "diagnosis", "verification", "log"}.
    """
    from decaenv.runtime.rasterizer.builder import build

    result = build(root=scratch, timeout=timeout, lock_timeout=60.0)
    out: Dict[str, Any] = {
        "sources": "decaenv's rasterizer (decaenv/runtime/csrc)",
        "cuda": None,
        "cuda_skipped": None,
        "compiler": os.environ.get("CXX", "c++"),
    }
    for variant in result.variants:
        diagnosis = asdict(variant.diagnosis) if variant.diagnosis is not None else None
        if variant.status == "skipped":
            out[f"{variant.variant}_skipped"] = diagnosis["cause"] if diagnosis else "skipped"
            continue
        out[variant.variant] = {
            "target": variant.variant,
            "ok": variant.ok,
            "status": variant.status,
            "seconds": variant.seconds,
            "diagnosis": diagnosis,
            "verification": _verification_line(variant.verification),
            "log": _tail(variant.log),
        }
    return cast(BuildSection, out)  # keys named after the build variants ("cpu", "cuda_skipped", ...)


def build_section(common: Dict[str, Any]) -> BuildSection:
    """The `build` probe section: `build_probe` in a fresh scratch folder, removed afterwards."""
    scratch = tempfile.mkdtemp(prefix="decaenv-build-probe-")
    try:
        return build_probe(scratch, timeout=float(common.get("build_timeout", 400.0)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


SECTIONS = {"build": build_section}

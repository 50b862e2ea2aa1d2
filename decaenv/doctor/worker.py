"""The probe worker: runs in a subprocess, executes named probe sections, streams one JSON line per event.

Anything that imports a heavy or possibly broken library (torch, numpy, chumpy, face_alignment, pytorch3d)
or loads a user's file runs here, never in the doctor's own process: a segfault, a hang or a polluted
`sys.modules` then costs one probe, not the report. Several sections share one process (torch is imported
once); the parent (`decaenv.doctor.sessions`) enforces a time budget per section and restarts the remaining
sections in a fresh process when one hangs or kills its process.

Protocol (stdout, one line each, prefixed with `MARKER`):
    {"event": "start", "section": name}
    {"event": "done", "section": name, "ok": true, "data": {...}}
    {"event": "done", "section": name, "ok": false, "error": {"type", "message", "traceback"}}
Library output is redirected to stderr so it cannot corrupt the protocol.

This module and the section modules import only the standard library at import time.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

MARKER = "@@decaenv-probe@@ "


@dataclass(frozen=True)
class SectionSpec:
    """Where and how long a section runs.

    Attributes:
        group: sections of one group share a process (in the order of `SECTION_ORDER`).
        budget: kind of time budget ("import", "data", "build"; see `decaenv.doctor.context.Budgets`).
    """

    group: str
    budget: str


SECTION_SPECS: Dict[str, SectionSpec] = {
    # One process imports torch once and answers everything that needs it, most important first; the
    # sections that may be slow or fragile (face_alignment pulls numba/cv2; a 434 MB checkpoint) come last,
    # so a hang there costs only themselves (the rest restarts in a fresh process).
    "torch": SectionSpec("torch", "import"),
    "cuda": SectionSpec("torch", "import"),
    "torch-load": SectionSpec("torch", "import"),
    "rasterizer": SectionSpec("torch", "import"),
    "pytorch3d": SectionSpec("torch", "import"),
    "face-alignment": SectionSpec("torch", "import"),
    "detectors": SectionSpec("torch", "import"),
    "checkpoint-load": SectionSpec("torch", "data"),
    # A second process runs the numpy-level probes in parallel; chumpy last because importing it may leave a
    # half-imported package behind.
    "numpy": SectionSpec("numpy", "import"),
    "flame-selftest": SectionSpec("numpy", "import"),
    "flame-load": SectionSpec("numpy", "data"),
    "runtime-packages": SectionSpec("numpy", "import"),
    "compat": SectionSpec("numpy", "import"),
    "deca-imports": SectionSpec("numpy", "import"),
    "chumpy": SectionSpec("numpy", "import"),
    # The build probe (compiles for a minute): its own process, only when its cached verdict is stale.
    "build": SectionSpec("build", "build"),
}
SECTION_ORDER = list(SECTION_SPECS)


#: Extra section modules (comma-separated import names, each with a `SECTIONS` dict): how tests add probes
#: that hang, die or raise, to exercise budgets and crash isolation with real processes.
PLUGINS_ENV = "DECAENV_DOCTOR_PROBE_PLUGINS"


def spec_of(name: str) -> SectionSpec:
    """The spec of a section; unknown (plugin) sections get a process of their own and the import budget."""
    return SECTION_SPECS.get(name) or SectionSpec(name, "import")


def _section_functions() -> Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]]:
    import importlib

    from decaenv.doctor import probes_build, probes_data, probes_env

    funcs: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {}
    modules = [probes_env, probes_data, probes_build]
    modules += [importlib.import_module(m.strip()) for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    for module in modules:
        funcs.update(module.SECTIONS)
    return funcs


def _emit(out, payload: Dict[str, Any]) -> None:
    out.write(MARKER + json.dumps(payload, default=str) + "\n")
    out.flush()


def _error(exc: BaseException) -> Dict[str, Any]:
    return {"type": type(exc).__name__, "message": " ".join(str(exc).split())[:2000],
            "traceback": traceback.format_exc()[-4000:]}


def run_sections(names: List[str], common: Dict[str, Any], out) -> None:
    """Run the sections in order, reporting each on `out` (see the module docstring)."""
    funcs = _section_functions()
    for name in names:
        _emit(out, {"event": "start", "section": name, "t": time.time()})
        try:
            if name not in funcs:
                raise KeyError(f"unknown probe section {name!r}")
            data = funcs[name](common)
            _emit(out, {"event": "done", "section": name, "ok": True, "data": data})
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a section error is reported, never fatal
            _emit(out, {"event": "done", "section": name, "ok": False, "error": _error(exc)})


def main(argv: List[str] = None) -> int:
    """Entry point: `argv[0]` is a JSON request `{"sections": [...], "common": {...}}`."""
    request = json.loads((argv if argv is not None else sys.argv[1:])[0])
    # Keep the protocol stream for ourselves; everything libraries print goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        run_sections(list(request["sections"]), dict(request.get("common", {})), protocol)
    finally:
        protocol.flush()
    return 0


def bootstrap_code(package_root: str) -> str:
    """The `python -c` program that starts the worker: it drops the current directory from `sys.path`
    (a stray `numpy.py` there must not shadow the real one) and makes decaenv importable."""
    return ("import os, sys\n"
            "if sys.path and sys.path[0] in ('', os.getcwd()):\n"
            "    del sys.path[0]\n"
            f"sys.path.append({package_root!r})\n"
            "from decaenv.doctor.worker import main\n"
            "sys.exit(main())\n")

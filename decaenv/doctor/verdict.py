"""The last line of a doctor run and its exit code.

"ready: CUDA with the CUDA rasterizer" / "ready: CPU with the pure-torch rasterizer" / "not ready: N problems (…)".
Exit codes follow decaenv's contract: 0 ready (warnings allowed), 1 problems (or warnings with `--strict`),
2 the doctor could not reach a verdict (a check crashed or timed out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from decaenv.doctor.model import Report, Status

BACKEND_NAMES = {"cuda": "the CUDA rasterizer", "cpu": "the compiled CPU rasterizer",
                 "pytorch3d": "the pytorch3d rasterizer", "torch": "the pure-torch rasterizer",
                 "reference": "the reference rasterizer"}


@dataclass
class Verdict:
    """Summary of a report.

    Attributes:
        ready: no FAIL, TIMEOUT or CRASH. line: the verdict line. device: "cuda"/"cpu" (None when not checked).
        rasterizer: backend chosen for that device. problems / warnings / unchecked: check ids.
        deca: with a DECA checkout in use, {"checkout", "runs_under_exec", "blockers"} (the `deca-demo` row);
        the line then ends with whether DECA's own demo runs here under `decaenv exec`. None otherwise.
    """

    ready: bool
    line: str
    device: Optional[str] = None
    rasterizer: Optional[str] = None
    problems: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    unchecked: List[str] = field(default_factory=list)
    deca: Optional[dict] = None

    def to_json(self) -> dict:
        return {"ready": self.ready, "line": self.line, "device": self.device, "rasterizer": self.rasterizer,
                "problems": self.problems, "warnings": self.warnings, "unchecked": self.unchecked,
                "deca": self.deca}


def _device_and_backend(report: Report):
    cuda = report.get("torch-cuda")
    raster = report.get("rasterizer")
    if raster is None or raster.status not in (Status.OK, Status.WARN):
        return None, None
    device = "cuda" if cuda is not None and cuda.data.get("usable_gpus") else "cpu"
    arch = report.get("torch-gpu-arch")
    if device == "cuda" and arch is not None and arch.status is Status.FAIL:
        device = "cpu"
    backend = (raster.data.get("choice") or {}).get(device)
    return device, backend


def _deca_demo(report: Report) -> Optional[dict]:
    """The `deca-demo` row as the verdict's `deca` part (None when no checkout was checked)."""
    row = report.get("deca-demo")
    if row is None or "runs_under_exec" not in row.data:
        return None
    data = row.data
    return {"checkout": data.get("checkout"), "demo": data.get("demo"), "runs_under_exec": data["runs_under_exec"],
            "blockers": list(data.get("blockers", [])) + list(data.get("unchecked", []))}


def _with_deca(verdict: Verdict, deca: Optional[dict]) -> Verdict:
    if deca is None:
        return verdict
    verdict.deca = deca
    if deca["runs_under_exec"]:
        verdict.line += f"; DECA's {deca['demo']} runs here under `decaenv exec`"
    else:
        verdict.line += (f"; DECA's {deca['demo']} will not run here, even under `decaenv exec` "
                         f"({', '.join(deca['blockers'])})")
    return verdict


def compute_verdict(report: Report) -> Verdict:
    """Derive the verdict from a report's results (all of them, shown or not)."""
    return _with_deca(_compute(report), _deca_demo(report))


def _compute(report: Report) -> Verdict:
    rows = list(report.results.items()) + list(report.requirements.items())
    problems = [cid for cid, r in rows if r.status.is_problem]
    warnings = [cid for cid, r in rows if r.status is Status.WARN]
    unchecked = [cid for cid, r in rows if r.status.could_not_check]
    if problems:
        shown = ", ".join(problems[:5]) + (", …" if len(problems) > 5 else "")
        noun = "problem" if len(problems) == 1 else "problems"
        return Verdict(False, f"not ready: {len(problems)} {noun} ({shown})", problems=problems,
                       warnings=warnings, unchecked=unchecked)
    device, backend = _device_and_backend(report)
    tail = f" ({len(warnings)} warning{'s' if len(warnings) != 1 else ''})" if warnings else ""
    if device is None:
        shown = len(report.results)
        line = f"ready: {shown} check{'s' if shown != 1 else ''} passed{tail}"
    else:
        line = f"ready: {device.upper()} with {BACKEND_NAMES.get(backend or '', backend or 'no rasterizer')}{tail}"
    return Verdict(True, line, device, backend, problems, warnings, unchecked)


def exit_code(verdict: Verdict, strict: bool = False) -> int:
    """0 ready, 1 problems (or warnings with --strict), 2 a check crashed or timed out."""
    if verdict.unchecked:
        return 2
    if verdict.problems or (strict and verdict.warnings):
        return 1
    return 0

"""`decaenv selftest`: prove the whole chain works here, end to end, on synthetic weights.

Stages, in order (a stage that cannot run makes the ones after it `skip`; nothing is faked):
    doctor       run the environment checks (not the data checks: the self-test brings its own data)
    assets       write a synthetic DECA data dir (random weights, official formats) to a temp folder
    model        load DECA from it (checkpoint strictly, FLAME without chumpy)
    reconstruct  reconstruct a public-domain face photo (`skimage.data.astronaut()`, NASA)
    outputs      write DECA's outputs and a visualisation to the output folder and read them back
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from decaenv.errors import DecaenvError
from decaenv.paths import DataDir
from decaenv.runtime.selftest_stages import StageContext

STAGES = ("doctor", "assets", "model", "reconstruct", "outputs")
#: Which earlier stage each stage needs (the doctor's verdict is reported but blocks nothing).
REQUIRES = {"doctor": None, "assets": None, "model": "assets", "reconstruct": "model", "outputs": "reconstruct"}
PUBLIC_TOPOLOGY_ENV = "DECAENV_TEST_ASSETS"


@dataclass
class StageResult:
    """Outcome of one stage: status is "ok", "fail" or "skip"."""

    name: str
    status: str
    summary: str
    seconds: float = 0.0
    details: List[str] = field(default_factory=list)


@dataclass
class SelftestReport:
    """All stages and the verdict ("pass" only when every stage is "ok"; the first other one is named)."""

    stages: List[StageResult]
    out_dir: str

    @property
    def passed(self) -> bool:
        return all(s.status == "ok" for s in self.stages)

    @property
    def verdict(self) -> str:
        if self.passed:
            return f"pass: DECA reconstructs end to end here; outputs in {self.out_dir}"
        bad = next(s for s in self.stages if s.status != "ok")
        return f"fail: stage '{bad.name}' {bad.status}: {bad.summary}"

    def to_json(self) -> dict:
        return {
            "schema": 1,
            "verdict": "pass" if self.passed else "fail",
            "message": self.verdict,
            "out_dir": self.out_dir,
            "stages": [asdict(s) for s in self.stages],
        }


@dataclass
class SelftestOptions:
    """Inputs of a self-test run.

    Attributes:
        out_dir: where outputs and the visualisation go. seed: synthetic-weight seed.
        device: "auto", "cpu" or "cuda". topology_dir: folder with DECA's public topology files, or None
        (then: the data dir if it has them, else `$DECAENV_TEST_ASSETS/deca-data`, else procedural).
        data_dir: the user's data dir, as the CLI resolved it (only read to find public topology files).
    """

    out_dir: Path
    seed: int = 0
    device: str = "auto"
    topology_dir: Optional[Path] = None
    data_dir: Optional[DataDir] = None


def find_public_topology(options: SelftestOptions) -> Optional[Path]:
    """The folder whose DECA public files the synthetic assets should use, or None (procedural)."""
    from decaenv.deca_layout import PUBLIC_FILES

    candidates = [options.topology_dir, options.data_dir.path if options.data_dir else None]
    env = os.environ.get(PUBLIC_TOPOLOGY_ENV)
    if env:
        candidates += [Path(env) / "deca-data", Path(env)]
    for folder in candidates:
        if folder is not None and all((Path(folder) / name).is_file() for name in PUBLIC_FILES):
            return Path(folder)
    return None


def _stage_doctor(ctx: StageContext, options: SelftestOptions) -> str:
    from decaenv.doctor import selftest_gate

    return selftest_gate()


def _stage_assets(ctx: StageContext, options: SelftestOptions) -> str:
    from decaenv.synthetic import make_assets

    public = find_public_topology(options)
    report = make_assets(ctx.workdir / "data", seed=options.seed, public_dir=public, with_optimizer=False)
    ctx.data_dir = report.data_dir
    return f"{len(report.files)} files, topology {report.topology}, {report.seconds:.1f} s"


def _stage_runtime(name: str) -> Callable[[StageContext, SelftestOptions], str]:
    def run(ctx: StageContext, options: SelftestOptions) -> str:
        from decaenv.runtime import selftest_stages

        return getattr(selftest_stages, name)(ctx, options)

    return run


_RUNNERS: Dict[str, Callable[[StageContext, SelftestOptions], str]] = {
    "doctor": _stage_doctor,
    "assets": _stage_assets,
    "model": _stage_runtime("model"),
    "reconstruct": _stage_runtime("reconstruct"),
    "outputs": _stage_runtime("outputs"),
}


def run_selftest(options: SelftestOptions, on_stage: Optional[Callable[[StageResult], None]] = None) -> SelftestReport:
    """Run every stage in order; a stage whose requirement (`REQUIRES`) did not pass is "skip"."""
    results: List[StageResult] = []
    status: Dict[str, str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="decaenv-selftest-"))
    ctx = StageContext(workdir)
    try:
        for name in STAGES:
            needed = REQUIRES[name]
            if needed is not None and status.get(needed) != "ok":
                result = StageResult(name, "skip", f"not run: stage '{needed}' did not pass")
            else:
                result = _run_stage(name, ctx, options)
            status[name] = result.status
            results.append(result)
            if on_stage is not None:
                on_stage(result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return SelftestReport(results, str(options.out_dir))


def _run_stage(name: str, ctx: StageContext, options: SelftestOptions) -> StageResult:
    start = time.perf_counter()
    details: List[str] = []
    try:
        summary = _RUNNERS[name](ctx, options)
        status = "ok"
    except DecaenvError as exc:
        summary, status = exc.one_line(), "fail"
    except Exception as exc:  # noqa: BLE001 - a stage crash is a self-test failure, reported with its trace
        summary = f"{type(exc).__name__}: {exc}"
        status, details = "fail", traceback.format_exc().splitlines()
    return StageResult(name, status, summary, time.perf_counter() - start, details)

"""The doctor's entry points: `run_doctor` (used by the CLI) and `selftest_gate` (used by `decaenv selftest`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from decaenv.doctor.model import Check, CheckResult, Report, Status
from decaenv.doctor.verdict import Verdict, compute_verdict, exit_code
from decaenv.errors import DecaenvError

ENV_TIMEOUTS = "DECAENV_DOCTOR_TIMEOUTS"


@dataclass
class DoctorOptions:
    """How to run the doctor.

    Attributes:
        names: check ids or category names (empty: all). data_dir / data_dir_source: the data dir and where it
        came from. no_build: skip the build probe. use_cache: reuse cached results. strict: warnings fail.
        command_timeout: budget per external tool in seconds (default 10; `DECAENV_DOCTOR_TIMEOUTS` sets all
        budgets). categories: restrict to these categories (selftest: everything but "data").
        deca_dir: the user's DECA checkout; None: the checkout holding the working directory, if any
        (`find_checkout=False` turns that off). Without one the `checkout` category is not run.
    """

    names: Sequence[str] = ()
    data_dir: Optional[Path] = None
    data_dir_source: str = "default"
    no_build: bool = False
    use_cache: bool = True
    strict: bool = False
    command_timeout: Optional[float] = None
    categories: Optional[Sequence[str]] = None
    environ: Optional[Dict[str, str]] = None
    python: Optional[str] = None
    deca_dir: Optional[Path] = None
    find_checkout: bool = True


@dataclass
class DoctorRun:
    """A finished run: the report, its verdict and the process exit code."""

    report: Report
    verdict: Verdict
    exit_code: int
    ctx: object = field(repr=False, default=None)


def _registry():
    from decaenv.doctor import checks  # noqa: F401 - registers every check
    from decaenv.doctor.registry import REGISTRY

    return REGISTRY


def build_context(options: DoctorOptions):
    """A `Context` on the real machine (a `SystemProbe` with budgets from the options and environment)."""
    from decaenv.doctor.context import Context
    from decaenv.doctor.probe import Budgets, SystemProbe

    environ = dict(os.environ if options.environ is None else options.environ)
    data_dir = Path(options.data_dir) if options.data_dir else _default_data_dir()
    budgets = Budgets.from_env(environ.get(ENV_TIMEOUTS), options.command_timeout)
    deca_dir = checkout_of(options)
    probe = SystemProbe(python=options.python, environ=environ, budgets=budgets,
                        common={"data_dir": str(data_dir), "build_timeout": max(budgets.build - 20.0, 10.0),
                                "deca_dir": str(deca_dir) if deca_dir else None})
    return Context(probe=probe, data_dir=data_dir, data_dir_source=options.data_dir_source,
                   no_build=options.no_build, deca_dir=deca_dir)


def checkout_of(options: DoctorOptions) -> Optional[Path]:
    """The DECA checkout to check: `--deca-dir` (which must be one), else the one holding the working dir.

    Raises:
        UsageError: `--deca-dir` is not a DECA checkout.
    """
    from decaenv.doctor.deca_source import find_checkout, is_checkout
    from decaenv.errors import UsageError

    if options.deca_dir is not None:
        path = Path(options.deca_dir).expanduser().resolve()
        if not is_checkout(path):
            raise UsageError(f"--deca-dir {options.deca_dir} is not a DECA checkout (no decalib/deca.py)",
                             hint="give the folder you cloned DECA into (it holds decalib/ and demos/)")
        return path
    return find_checkout(Path.cwd()) if options.find_checkout else None


def _default_data_dir() -> Path:
    from decaenv.paths import resolve_data_dir

    return resolve_data_dir(None).path


def select_names(options: DoctorOptions, checkout: bool = False) -> List[str]:
    """Check ids to run: the requested names, narrowed to `options.categories` when given; the `checkout`
    category only when a DECA checkout is in use (or when asked for by name)."""
    if options.categories is None and (checkout or options.names):
        return list(options.names)
    categories = options.categories if options.categories is not None else \
        [c for c, _ in _categories() if checkout or c != "checkout"]
    return [c.id for c in _registry().all() if c.category in categories
            and (not options.names or c.id in options.names or c.category in options.names)]


def run_doctor(options: DoctorOptions,
               on_result: Optional[Callable[[Check, CheckResult], None]] = None) -> DoctorRun:
    """Run the doctor on this machine and compute its verdict and exit code."""
    from decaenv.doctor.cache import Fingerprint, ResultCache
    from decaenv.doctor.runner import Runner

    registry = _registry()
    ctx = build_context(options)
    fingerprint = Fingerprint(ctx.probe.environ, ctx.data_dir, ctx.probe.which) if options.use_cache else None
    cache = ResultCache.default() if options.use_cache else None
    try:
        report = Runner(registry, ctx, cache=cache, fingerprint=fingerprint,
                        on_result=on_result).run(select_names(options, ctx.deca_dir is not None))
    finally:
        ctx.probe.close()
    report.options["selected"] = list(options.names)
    report.environment = environment_summary(ctx, report)
    report.options.update({"strict": options.strict, "cache": options.use_cache})
    verdict = compute_verdict(report)
    return DoctorRun(report, verdict, exit_code(verdict, options.strict), ctx)


def environment_summary(ctx, report: Report) -> Dict[str, object]:
    """Short facts for the report header (from results already computed; nothing new is probed)."""
    p = ctx.probe.platform()
    env: Dict[str, object] = {"python": f"{p.python} ({p.implementation}, {p.executable})",
                              "os": f"{p.distro or p.system} {p.release} {p.machine}".strip(),
                              "data_dir": f"{ctx.data_dir} ({ctx.data_dir_source})"}
    if ctx.deca_dir is not None:
        env["deca_dir"] = str(ctx.deca_dir)
    torch_result = ctx.results.get("torch")
    if torch_result is not None and torch_result.data.get("version"):
        env["torch"] = f"{torch_result.data['version']}"
        env["cuda"] = torch_result.data.get("cuda")
    cuda_result = ctx.results.get("torch-cuda")
    if cuda_result is not None:
        env["gpus"] = [f"{g['name']} (sm_{g['capability'][0]}{g['capability'][1]})"
                       for g in cuda_result.data.get("gpus", [])]
    return env


def selftest_gate() -> str:
    """Run the environment checks (not the user's data) and say whether the CPU path can run here.

    Returns:
        the verdict line of the environment checks.
    Raises:
        DecaenvError: naming the first check that blocks the CPU path, with its fix.
    """
    options = DoctorOptions(no_build=True, categories=[c for c, _ in _categories() if c not in ("data", "checkout")],
                            find_checkout=False)
    run = run_doctor(options)
    registry = _registry()
    blockers = [(cid, r) for cid, r in run.report.results.items()
                if r.status.is_problem and registry.get(cid).cpu_blocker]
    if blockers:
        cid, result = blockers[0]
        hint = None
        if result.remediation:
            commands = result.remediation.commands
            hint = result.remediation.text + (f" `{commands[0]}`" if commands else "")
        others = f" (and {len(blockers) - 1} more)" if len(blockers) > 1 else ""
        raise DecaenvError(f"the CPU path cannot run here: {cid}: {result.summary}{others}", hint=hint)
    problems = [cid for cid, r in run.report.results.items() if r.status.is_problem]
    if problems:
        return f"CPU path can run; other problems: {', '.join(problems)} (see `decaenv doctor`)"
    return run.verdict.line


def _categories() -> Tuple[Tuple[str, str], ...]:
    from decaenv.doctor.model import CATEGORIES

    return CATEGORIES


__all__ = ["DoctorOptions", "DoctorRun", "run_doctor", "selftest_gate", "Status"]

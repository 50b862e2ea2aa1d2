"""What `decaenv doctor` does once its flags are parsed: run, show progress, fix, render, pick the exit code.

The doctor package returns data (`DoctorRun`: report and verdict); the console, the spinner and the exit code
are decided here. Imported only by `decaenv.cli.doctor` (inside the command), so `decaenv --help` stays light.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from decaenv.cli._console import make_console, print_json, progress_enabled
from decaenv.doctor.api import DoctorOptions, DoctorRun, check_registry, run_doctor
from decaenv.doctor.verdict import exit_code
from decaenv.paths import DataDir

SLOW_NOTICE_S = 10.0


class CheckSpinner:
    """A one-line spinner on stderr naming the checks still running (only on a terminal)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._status: Optional[Any] = None  # rich.status.Status while shown
        self._lock = threading.Lock()

    def __enter__(self) -> "CheckSpinner":
        if self.enabled:
            status = make_console(stderr=True).status("decaenv doctor: checking…", spinner="dots")
            status.__enter__()
            self._status = status
        return self

    def __exit__(self, *exc) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)

    def update(self, item, result) -> None:
        if self._status is None:
            return
        with self._lock:
            self.done += 1
            elapsed = time.monotonic() - self.started
            note = " (this is taking longer than usual: a build or a large file)" if elapsed > SLOW_NOTICE_S else ""
            self._status.update(f"decaenv doctor: {self.done} checks done, last: {item.id}{note}")


def list_checks(as_json: bool) -> None:
    """`--list-checks`."""
    checks = check_registry().all()
    if as_json:
        from decaenv.cli._console import print_json
        from decaenv.runtime.rasterizer.diagnose import causes_table

        print_json(
            {
                "schema": "decaenv-doctor-checks/1",
                "checks": [c.describe() for c in checks],
                "build_causes": causes_table(),
            }
        )
        return
    from decaenv.cli._doctor_render import render_list

    render_list(checks, make_console())


def _parse_require(require: List[str], names: List[str]):
    """Parsed `--require` tokens, and `names` widened to the checks they read (when narrowed at all)."""
    from decaenv.doctor import require as req

    checks = check_registry().all()
    categories: Dict[str, List[str]] = {}
    for check in checks:
        categories.setdefault(check.category, []).append(check.id)
    parsed = req.parse(require, [c.id for c in checks], categories)
    if names:
        names = names + [cid for cid in req.checks_needed(parsed) if cid not in names]
    return parsed, names


def doctor(
    *,
    names: List[str],
    data_dir: DataDir,
    as_json: bool,
    markdown: bool,
    strict: bool,
    use_cache: bool,
    no_build: bool,
    fix: bool,
    dry_run: bool,
    yes: bool,
    timeout: Optional[float],
    verbose: bool,
    quiet: bool,
    require: Optional[List[str]] = None,
    deca_dir: Optional[Path] = None,
    show_progress: bool = True,
) -> int:
    """Run the doctor (and `--fix`), print the chosen form, return the exit code (the gate's with --require)."""
    from decaenv.cli._doctor_render import render
    from decaenv.doctor import require as req
    from decaenv.doctor.formats import to_json, to_markdown

    requirements, names = _parse_require(require or [], names)
    options = DoctorOptions(
        names=names,
        data_dir=data_dir,
        no_build=no_build,
        use_cache=use_cache,
        strict=strict,
        command_timeout=timeout,
        deca_dir=deca_dir,
    )
    interactive = show_progress and progress_enabled() and not (as_json or markdown or quiet)
    with CheckSpinner(interactive) as progress:
        run = run_doctor(options, on_result=progress.update)
    if fix:
        run = _fix(run, options, dry_run=dry_run, yes=yes, quiet=quiet or as_json or markdown)
    gate = req.evaluate(requirements, run.report, strict) if requirements else None
    code = exit_code(run.verdict, strict) if gate is None else gate.exit_code
    if as_json:
        data = to_json(run.report, run.verdict, code)
        if gate is not None:
            data["require"] = gate.to_json()
        print_json(data)
    elif markdown:
        text = to_markdown(run.report, run.verdict, code)
        sys.stdout.write(text if gate is None else text + f"\n**Gate (--require):** {gate.line()}\n")
    else:
        console = make_console()
        if quiet:
            console.print(run.verdict.line, markup=False, highlight=False)
        else:
            render(run.report, run.verdict, console, verbose=verbose)
        if gate is not None:
            console.print(gate.line(), markup=False, highlight=False)
    return code


def _fix(run: DoctorRun, options: DoctorOptions, *, dry_run: bool, yes: bool, quiet: bool) -> DoctorRun:
    """Apply the report's fixes, say what was done and what is left, and check again (unless dry run)."""
    from decaenv.doctor.fix import Fixer, extension_roots_of, plan

    console = make_console(stderr=quiet)

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    actions = plan(run.report)
    if not actions:
        say("--fix: nothing to fix automatically" + ("" if run.verdict.ready else "; see the remediations below"))
        return run
    fixer = Fixer(
        run.ctx.probe.python, run.ctx.data_dir.path, extension_roots_of(run.report), yes=yes, dry_run=dry_run, say=say
    )
    outcomes = fixer.apply(actions)
    labels = {"done": "did", "planned": "would do", "left": "left to you", "failed": "FAILED"}
    for outcome in outcomes:
        say(f"--fix {labels[outcome.state]}: {outcome.action.description} — {outcome.message}")
    if dry_run or not any(o.state == "done" for o in outcomes):
        return run
    say("--fix: checking again…")
    return run_doctor(options)

"""`decaenv doctor`: thin wrapper over `decaenv.doctor` (run, render, fix)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from decaenv.cli._state import state_of


def doctor(
    ctx: typer.Context,
    names: Optional[List[str]] = typer.Argument(
        None, metavar="[ID|CATEGORY]...", help="Run only these checks (ids or categories; see --list-checks)."
    ),
    list_checks: bool = typer.Option(False, "--list-checks", help="List the checks and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (schema: docs/doctor-json.md)."),
    markdown: bool = typer.Option(
        False, "--markdown", help="Print a Markdown block for bug reports (home, user and host redacted)."
    ),
    strict: bool = typer.Option(False, "--strict", help="Warnings count as problems (exit code 1)."),
    require: Optional[List[str]] = typer.Option(
        None,
        "--require",
        metavar="REQ[,REQ...]",
        help="CI gate: exit 1 only if one of these is not met, e.g. cuda,rasterizer=cuda,data "
        "(tokens: cuda, rasterizer=KIND, data, flame, checkpoint, build, torch, a check id or category).",
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Re-run every probe instead of reusing cached results."),
    no_build: bool = typer.Option(False, "--no-build", help="Do not compile the rasterizer build probe."),
    fix: bool = typer.Option(False, "--fix", help="Apply the fixes the checks propose, then check again."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --fix: only show what would be done."),
    yes: bool = typer.Option(False, "--yes", "-y", help="With --fix: also install packages (pip)."),
    timeout: Optional[float] = typer.Option(
        None,
        "--timeout",
        metavar="SECONDS",
        min=0.1,
        help="Time budget per external tool (nvcc, gcc, ...). Default 10.",
    ),
    deca_dir: Optional[Path] = typer.Option(
        None,
        "--deca-dir",
        metavar="DIR",
        help="Also check this DECA checkout's code against this environment (default: the checkout the "
        "working directory is in, if any).",
    ),
) -> None:
    """Check this machine for DECA: probes with a verdict, the cause and the fix for each problem.

    Exit codes: 0 ready (warnings allowed), 1 problems found (or warnings with --strict), 2 a check crashed or
    timed out. With --require: 0 every requirement met, 1 one is not, 2 a required check crashed or timed out.
    """
    from decaenv.cli import _doctor_run
    from decaenv.errors import UsageError

    state = state_of(ctx)
    if as_json and markdown:
        raise UsageError("--json and --markdown cannot be combined", hint="pick one output format")
    if (dry_run or yes) and not fix:
        raise UsageError("--dry-run and --yes only apply to --fix", hint="add --fix")
    if list_checks:
        _doctor_run.list_checks(as_json=as_json)
        return
    code = _doctor_run.doctor(
        names=list(names or ()),
        data_dir=state.data_dir(),
        as_json=as_json,
        markdown=markdown,
        strict=strict,
        use_cache=not no_cache,
        no_build=no_build,
        fix=fix,
        dry_run=dry_run,
        yes=yes,
        timeout=timeout,
        verbose=state.verbose,
        quiet=state.quiet,
        require=list(require or ()),
        deca_dir=deca_dir,
        show_progress=state.progress,
    )
    raise typer.Exit(code)

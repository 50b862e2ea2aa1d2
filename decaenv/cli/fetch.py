"""`decaenv fetch`: download, import and verify DECA's data files (thin wrapper over `decaenv.fetch.command`)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from decaenv.cli._state import state_of


def fetch(
    ctx: typer.Context,
    ids: Optional[List[str]] = typer.Argument(
        None,
        metavar="ID",
        show_default=False,
        help="Files to fetch by manifest id (see --list). Default: everything reconstruction needs.",
    ),
    list_: bool = typer.Option(False, "--list", help="Show every file: status, size, licence, sources."),
    verify: bool = typer.Option(False, "--verify", help="Re-hash and content-check the files; exit 1 if one is bad."),
    from_: Optional[List[Path]] = typer.Option(
        None,
        "--from",
        metavar="PATH",
        help="Import files, archives or folders you already have (FLAME2020.zip, deca_model.tar, ...). "
        "Repeat it, or list more paths after it.",
    ),
    everything: bool = typer.Option(False, "--all", help="Also fetch the optional files (texture spaces)."),
    offline: bool = typer.Option(False, "--offline", help="Never use the network."),
    force: bool = typer.Option(False, "--force", help="Download or import again even if the file is verified."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON document (schema in docs/commands/fetch.md)."),
    username: Optional[str] = typer.Option(
        None,
        "--username",
        metavar="NAME",
        help="FLAME account name. The password comes from $DECAENV_FLAME_PASSWORD, ~/.netrc or a hidden prompt.",
    ),
    accept_license: bool = typer.Option(
        False, "--accept-license", help="Accept the licences of the fetched files (for CI; recorded once)."
    ),
    forget: Optional[List[str]] = typer.Option(
        None,
        "--forget",
        metavar="ID",
        help="Drop the hash recorded on first use for ID (when you know the upstream file changed). Repeatable.",
    ),
    clean: bool = typer.Option(False, "--clean", help="Empty the quarantine of refused payloads."),
) -> None:
    """Download, import and verify DECA's data files, laid out as DECA's data/ folder expects."""
    from decaenv.cli import _fetch_output as output
    from decaenv.cli._console import print_json, progress_enabled
    from decaenv.fetch.command import FetchRequest, run

    state = state_of(ctx)
    request = FetchRequest(
        data_dir=state.data_dir(),
        ids=list(ids or []),
        list_only=list_,
        verify=verify,
        from_paths=list(from_ or []),
        everything=everything,
        offline=offline,
        force=force,
        username=username,
        accept_license=accept_license,
        forget=list(forget or []),
        clean=clean,
    )
    silent = state.quiet or as_json
    quiet_bars = silent or list_ or verify or forget or clean or not progress_enabled(state)
    progress = None if quiet_bars else output.RichProgress()
    try:
        report = run(
            request,
            progress=progress,
            confirm_license=output.confirm_license,
            on_event=(lambda text: None) if silent else (lambda text: output.say(f"decaenv: {text}", err=True)),
        )
    finally:
        if progress is not None:
            progress.close()
    if as_json and report.mode not in ("forget", "clean"):
        print_json(report.to_json())
    else:
        output.print_report(report, quiet=state.quiet, verbose=state.verbose)
    if not report.ok and report.mode != "list":
        raise typer.Exit(1)

"""The `decaenv` command line: the composition root.

Every command lives in its own module (parse arguments, call one library function, render the result)
and is registered here. Command modules import only typer and the standard library at import time, so
`decaenv --help` stays fast and imports no torch, numpy or rich.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from decaenv import __version__
from decaenv.cli import animate as _animate
from decaenv.cli import build as _build
from decaenv.cli import cache as _cache
from decaenv.cli import convert as _convert
from decaenv.cli import doctor as _doctor
from decaenv.cli import exec_cmd as _exec_cmd
from decaenv.cli import fetch as _fetch
from decaenv.cli import patch as _patch
from decaenv.cli import patches as _patches
from decaenv.cli import reconstruct as _reconstruct
from decaenv.cli import selftest as _selftest
from decaenv.cli import table as _table
from decaenv.cli import transfer as _transfer
from decaenv.cli._state import CliState, configure_logging

app = typer.Typer(
    name="decaenv",
    help="Make DECA install, fetch its data and run on any machine: doctor, fetch, reconstruct.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"decaenv {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Optional[Path] = typer.Option(
        None,
        "--data-dir",
        metavar="DIR",
        help="DECA data folder. Default: $DECAENV_DATA_DIR, else ./data if it is a DECA data folder, "
        "else $DECAENV_HOME/data or the platform's user data dir.",
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More detail (repeat for debug logs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and the final verdict."),
    no_progress: bool = typer.Option(
        False, "--no-progress", help="No progress bars or spinners (also: DECAENV_NO_PROGRESS=1, non-TTY)."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    """Global options shared by every command (they may also be written after the command)."""
    state = CliState(data_dir_flag=data_dir, verbosity=-1 if quiet else verbose, progress=not no_progress)
    ctx.obj = state
    configure_logging(state.verbosity)


app.command("doctor")(_doctor.doctor)
app.command("selftest")(_selftest.selftest)
app.command("build")(_build.build)
app.command("exec", context_settings=_exec_cmd.CONTEXT_SETTINGS)(_exec_cmd.exec_command)
app.add_typer(_patches.app, name="patches")
app.add_typer(_convert.app, name="convert")
app.command("patch")(_patch.patch)
app.command("fetch")(_fetch.fetch)
app.command("reconstruct")(_reconstruct.reconstruct)
app.command("transfer")(_transfer.transfer)
app.command("animate")(_animate.animate)
app.add_typer(_cache.app, name="cache")
app.add_typer(_table.app, name="table")


def main(argv: Optional[List[str]] = None) -> int:
    """Console-script entry point: returns the process exit code (see `decaenv.errors`)."""
    import sys

    from decaenv.cli._argv import hoist_global_options
    from decaenv.cli._errors import run_app
    from decaenv.cli._typer_compat import avoid_pydantic

    command = typer.main.get_command(app)
    avoid_pydantic(command)  # typer >= 0.29 would import pydantic for every command (see the module)
    args = sys.argv[1:] if argv is None else argv
    return run_app(command, hoist_global_options(command, args) if args else args)

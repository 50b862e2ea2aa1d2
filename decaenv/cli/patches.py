"""`decaenv patches list`: each compatibility shim and whether this environment needs it."""

from __future__ import annotations

from typing import List, Optional

import typer

from decaenv.cli._state import state_of

app = typer.Typer(
    help="decaenv's compatibility shims (see `decaenv exec`).", rich_markup_mode=None, no_args_is_help=True
)

_MARK = {"active": "[active]    ", "needed": "[needed]    ", "not needed": "[not needed]"}


@app.command("list")
def list_patches(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
    python: Optional[str] = typer.Option(
        None,
        "--python",
        metavar="PATH",
        help="Judge for another interpreter (e.g. the venv you run DECA in) instead of this one.",
    ),
    assume: Optional[List[str]] = typer.Option(
        None,
        "--assume",
        metavar="DIST=VERSION",
        help="What-if: judge as if DIST were at VERSION ('none' = not installed); repeatable, "
        "e.g. --assume numpy=1.23.5 --assume python=3.10.0.",
    ),
) -> None:
    """List each shim as needed / not needed / active, with the version that decided it."""
    from decaenv.cli._console import make_console, print_json
    from decaenv.patches import Environment, launcher, registry

    state = state_of(ctx)
    assumed = _parse_assume(assume or [])
    if python:
        report = launcher.status_in(python, assumed)
        rows, where = report["shims"], f"{report['python']} (Python {report['version']})"
    else:
        import sys

        rows = [s.to_json() for s in registry.status_all(Environment(assumed))]
        where = f"{sys.executable} (Python {sys.version.split()[0]})"
    if as_json:
        print_json({"python": where, "shims": rows})
        return
    console = make_console(quiet=state.quiet)
    heading = f"shims for {where}" + (f", assuming {', '.join(assume)}" if assume else "")
    console.print(heading, markup=False, soft_wrap=True)
    for row in rows:
        console.print(f"{_MARK[row['state']]} {row['id']:<22} {row['detail']}", markup=False, soft_wrap=True)
        if state.verbose:
            console.print(f"{'':15}{row['title']}", markup=False, soft_wrap=True)
            console.print(f"{'':15}why: {row['reason']}", markup=False, soft_wrap=True)
            console.print(f"{'':15}see: {row['link']}", markup=False, soft_wrap=True)


def _parse_assume(items: List[str]) -> dict:
    from decaenv.errors import UsageError

    assumed = {}
    for item in items:
        name, sep, version = item.partition("=")
        if not sep or not name.strip() or not version.strip():
            raise UsageError(f"--assume {item!r} is not DIST=VERSION", hint="e.g. --assume numpy=1.26.4")
        version = version.strip()
        assumed[name.strip()] = None if version.lower() == "none" else version
    return assumed

"""`decaenv convert flame MODEL.pkl -o MODEL.npz`: FLAME's chumpy pickle to a clean, pickle-free npz."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from decaenv.cli._state import state_of

app = typer.Typer(help="Convert data files to decaenv's clean formats.", rich_markup_mode=None, no_args_is_help=True)


@app.command("flame")
def flame(
    ctx: typer.Context,
    src: Path = typer.Argument(..., metavar="MODEL.pkl", help="FLAME model (e.g. FLAME2020/generic_model.pkl)."),
    out: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="FILE.npz", help="Where to write the npz. Default: beside MODEL with .npz."
    ),
    kind: Optional[str] = typer.Option(
        None, "--kind", help="generic, female, male or flame2023 (default: from the file name)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite FILE.npz even if decaenv did not write it."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Read MODEL without chumpy (allowlisted unpickling, nothing executed) and write its arrays to FILE.npz.

    The npz holds the same arrays bit for bit plus the sha256 of MODEL, so the runtime uses it only while it
    matches MODEL.
    """
    from decaenv.cli._console import make_console, print_json
    from decaenv.loaders.convert import convert_flame

    result = convert_flame(src, out, kind=kind, force=force)
    if as_json:
        print_json(result.to_json())
        return
    console = make_console(quiet=state_of(ctx).quiet)
    console.print(result.summary(), markup=False, soft_wrap=True)
    for reason in result.incompatible:
        console.print(f"warning: not usable with DECA's checkpoint: {reason}", markup=False, soft_wrap=True)

"""`decaenv cache list|clean`: what decaenv keeps in its cache and data dir, with sizes (thin wrapper)."""

from __future__ import annotations

import typer

from decaenv.cli._state import state_of

app = typer.Typer(
    help="What decaenv keeps on disk (builds, caches, partial downloads, quarantine): list, clean.",
    rich_markup_mode=None,
    no_args_is_help=True,
)


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000.0
    return f"{value:.1f} GB"  # pragma: no cover


def _data_dir(ctx):
    """The resolved data dir, or None when it does not exist (then only the cache dir is listed)."""
    chosen = state_of(ctx).data_dir(must_exist=False)
    return chosen if chosen.path.is_dir() else None


@app.command("list")
def list_cache(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print the listing as JSON.")
) -> None:
    """Show each kind of item decaenv keeps, where it is, how many files and how many bytes."""
    from decaenv import housekeeping, paths
    from decaenv.cli._console import print_json

    chosen = _data_dir(ctx)
    items = housekeeping.inventory(chosen.path if chosen else None)
    data_bytes = housekeeping.data_dir_size(chosen.path) if chosen else 0
    if as_json:
        print_json(
            {
                "schema": "decaenv-cache/1",
                "cache_dir": str(paths.cache_dir()),
                "data_dir": str(chosen.path) if chosen else None,
                "data_dir_bytes": data_bytes,
                "items": [i.to_dict() for i in items],
            }
        )
        return
    typer.echo(f"cache dir: {paths.cache_dir()}")
    typer.echo(f"data dir:  {chosen.describe() + ', ' + _human(data_bytes) if chosen else '(none yet)'}")
    for item in items:
        busy = f" ({len(item.in_use)} in use)" if item.in_use else ""
        typer.echo(f"  {item.kind:<11} {len(item.files):>5} files {_human(item.size):>9}  {item.path}{busy}")
    typer.echo(
        f"  {'total':<11} {sum(len(i.files) for i in items):>5} files "
        f"{_human(sum(i.size for i in items)):>9}  (`decaenv cache clean` removes these; never data files)"
    )


@app.command("clean")
def clean_cache(
    ctx: typer.Context,
    builds: bool = typer.Option(False, "--builds", help="Only the compiled rasterizer builds."),
    partials: bool = typer.Option(False, "--partials", help="Only unfinished downloads nobody is writing."),
    quarantine: bool = typer.Option(False, "--quarantine", help="Only the payloads fetch refused."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be removed; remove nothing."),
) -> None:
    """Remove what decaenv can recreate: builds, doctor and hash caches, exec launchers, partial downloads
    and the quarantine (or only the kinds named by the flags). Installed data files are never touched."""
    from decaenv import housekeeping

    chosen = _data_dir(ctx)
    kinds = [k for k, on in (("builds", builds), ("partials", partials), ("quarantine", quarantine)) if on]
    removed = housekeeping.clean(chosen.path if chosen else None, kinds or list(housekeeping.KINDS), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        busy = f"; kept {len(item.in_use)} in use" if item.in_use else ""
        typer.echo(f"{verb} {item.kind}: {len(item.files)} files, {_human(item.size)} ({item.path}){busy}")
    total = sum(i.size for i in removed)
    typer.echo(f"{verb} {_human(total)} in all" if removed else "nothing to clean")

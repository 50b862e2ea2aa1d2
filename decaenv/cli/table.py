"""`decaenv table status|merge`: a dataset run's Parquet tables — how far each run or shard is (while they run),
why items failed, and all of them as one file (thin wrapper over `decaenv.runtime.table_tools`)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="A dataset run's tables (--save table): status (rows per run/shard, failures), merge (one file).",
    rich_markup_mode=None,
    no_args_is_help=True,
)
PATH_HELP = "A codes*.parquet table, or the folder of a run's or its shards' tables."


@app.command("status")
def status(
    path: Path = typer.Argument(..., help=PATH_HELP),
    failures: int = typer.Option(5, "--failures", min=0, help="Show the N most frequent reasons items failed."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Rows per table (ok, failed, only in a journal: a run going or killed) and why items failed; read while
    the runs write (nothing is changed)."""
    from decaenv.cli._console import print_json
    from decaenv.runtime.table_tools import age, missing_shards, table_status

    states, reasons, repeated = table_status(path, failures)
    missing = missing_shards(states)
    if as_json:
        print_json(
            {
                "schema": "decaenv-table-status/1",
                "tables": [s.to_dict() for s in states],
                "ok": sum(s.ok for s in states),
                "failed": sum(s.failed for s in states),
                "journaled": sum(s.journaled for s in states),
                "failures": [{"count": n, "reason": reason} for n, reason in reasons],
                "missing_shards": [f"{k}-of-{n}" for n, ks in missing.items() for k in ks],
                "rows_of_items_in_several_tables": repeated,
            }
        )
        return
    for s in states:
        pending = f", {s.journaled:,} in its journal (a run going, or killed)" if s.journaled else ""
        typer.echo(f"{Path(s.path).name}: ok {s.ok:,}, failed {s.failed:,}{pending}; last write {age(s.modified)} ago")
    ok, failed = sum(s.ok for s in states), sum(s.failed for s in states)
    typer.echo(f"total: {ok + failed:,} rows in {len(states)} table(s): ok {ok:,}, failed {failed:,}")
    if repeated:
        typer.echo(
            f"{repeated:,} of those rows are of items already in another table (the job run again under another "
            "split): read_codes and `decaenv table merge` keep one row per item, its ok row from the newest table"
        )
    for n, ks in missing.items():
        typer.echo(f"no table yet (not started, or before a first batch): shard(s) {', '.join(map(str, ks))} of {n}")
    for count, reason in reasons:
        typer.echo(f"  {count:,} × {reason}")


@app.command("merge")
def merge(
    path: Path = typer.Argument(..., help=PATH_HELP),
    out: Path = typer.Option(..., "-o", "--out", help="The Parquet file to write (replaced atomically)."),
) -> None:
    """Every table at PATH (journals included) as one Parquet file, for tools that read one file."""
    from decaenv.runtime.table_tools import merge_tables

    rows = merge_tables(path, out)
    typer.echo(f"wrote {rows:,} rows to {out}")

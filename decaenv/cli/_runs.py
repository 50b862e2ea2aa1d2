"""Shared CLI pieces of the commands that run DECA on items (reconstruct, transfer, animate): a progress bar that
prints per-item failures as they happen, and the one-line summary."""

from __future__ import annotations

from typing import Callable, Optional


def run_with_progress(console, total: Optional[int], description: str, run: Callable, show: bool = True):
    """Call `run(on_item)` under a progress bar (hidden with -q / --json, and when not `show`: --no-progress,
    not a terminal; see `decaenv.cli._console.progress_enabled`); returns what `run` returns."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True, disable=console.quiet or not show) as progress:
        task = progress.add_task(description, total=total)

        def on_item(outcome) -> None:
            progress.advance(task)
            if outcome.status == "failed":
                console.print(f"failed: {outcome.message}", markup=False, highlight=False)

        return run(on_item)


def print_summary(verb: str, summary, extra: str = "") -> None:
    """`<verb> N, failed N, skipped N in S s; outputs in DIR` on stderr (also under -q: it is the verdict)."""
    from decaenv.cli._console import make_console

    ok, failed, skipped = summary.count("ok"), summary.count("failed"), summary.count("skipped")
    line = (
        f"{verb} {ok}, failed {failed}, skipped {skipped} in {summary.seconds:.1f} s{extra}; "
        f"outputs in {summary.out_dir}"
    )
    make_console(quiet=False, stderr=True).print(line, markup=False, highlight=False)

"""Human output of `decaenv fetch`: the `--list`/`--verify` table, a line per file, the manual route, rich
progress bars, the licence prompt. rich is imported only inside the functions and classes that draw.

`decaenv.fetch.command.run` returns a `FetchReport`; everything the user sees of it is printed here.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Iterable, List, Optional

from decaenv.fetch.errors import error_code
from decaenv.fetch.progress import Progress

if TYPE_CHECKING:
    from decaenv.fetch.command import FetchReport, Forgotten
    from decaenv.fetch.engine import FileResult
    from decaenv.fetch.manifest import Entry, License, Manifest
    from decaenv.fetch.records import Licenses
    from decaenv.fetch.status import FileStatus

STATUS_WORDS = {
    "verified": "verified",
    "present": "present",
    "missing": "missing",
    "hash-unknown": "hash unknown",
    "size-mismatch": "size mismatch",
    "hash-mismatch": "hash mismatch",
    "invalid": "invalid",
}


def say(text: str, *, err: bool = False) -> None:
    """One plain line (no rich: `fetch -q`/`--json` runs never import it)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _size(n: Optional[int]) -> str:
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def print_report(report: FetchReport, *, quiet: bool, verbose: bool) -> None:
    """The human form of a report: the table (list, verify), what --forget/--clean did, or the per-file lines
    and verdict (fetch, import)."""
    if report.mode in ("list", "verify"):
        from decaenv.cli._console import make_console

        print_table(make_console(), report.manifest, report.data_dir, report.statuses, report.licenses)
    elif report.mode == "forget":
        for item in report.forgotten:
            say(forgotten_line(item, report.lockfile))
    elif report.mode == "clean":
        say(
            f"removed {report.removed} refused payload(s) ({report.freed_bytes / 1e6:,.1f} MB) from {report.quarantine}"
        )
    else:
        print_results(report.results, report.data_dir, quiet=quiet, verbose=verbose)


def forgotten_line(item: Forgotten, lockfile) -> str:
    """One `--forget` outcome."""
    if item.outcome == "published":
        return f"{item.id}: its hash is published in the manifest, there is no first-use record to forget"
    if item.outcome == "forgotten":
        return (
            f"{item.id}: forgot the first-use record (sha256 {item.sha256 or '?'}); "
            f"the next `decaenv fetch {item.id}` checks and records the file again"
        )
    return f"{item.id}: no first-use record in {lockfile}"


def print_results(results: List[FileResult], data_dir, *, quiet: bool, verbose: bool) -> None:
    """A line per file (not with -q), the errors, the manual route, the verdict."""
    from decaenv.fetch.command import needs_manual_route

    for result in results:
        if not quiet:
            say(result_line(result))
        if verbose:
            for note in result.notes:
                say(f"       {note}")
    for result in results:
        if result.error is not None:
            who = result.entry.id if result.entry.id != "?" else result.source
            say(f"decaenv: error: {who}: {result.error.one_line()}", err=True)
    by_hand = [r for r in results if r.error is not None and needs_manual_route(r)]
    for line in manual_block(by_hand):
        say(line, err=True)
    if not results:
        say("nothing to fetch: name files by id (see `decaenv fetch --list`)")
    else:
        say(f"{sum(1 for r in results if r.ok)}/{len(results)} file(s) ready in {data_dir}")


def confirm_license(lic: License, entry: Entry) -> bool:
    """Ask on the terminal (stderr) whether the licence of `entry` is accepted."""
    sys.stderr.write(f"\n{entry.dest} is under the {lic.name}.\n  Read it: {lic.url}\n")
    if lic.register:
        sys.stderr.write(f"  An account is needed: {lic.register}\n")
    sys.stderr.write("Do you accept this licence? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _note(status: FileStatus, entry: Entry) -> str:
    if status.status in ("verified", "present"):
        return status.content or ""
    if status.status == "missing":
        return "" if entry.default else "optional"
    return status.detail


def print_table(console, manifest: Manifest, data_dir, statuses: Iterable[FileStatus], licenses: Licenses) -> None:
    """The `--list` / `--verify` table, then one line per file that needs attention, then the licences."""
    from rich.table import Table

    statuses = list(statuses)
    if not console.is_terminal:
        console.width = max(console.width, 120)  # pipes and files: never truncate ids or names
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "file", "status", "size", "licence", "source"):
        table.add_column(column, no_wrap=True, min_width=13 if column == "status" else None)
    styles = {"verified": "green", "missing": "yellow", "hash-unknown": "cyan", "present": "cyan"}
    notes = []
    for status in statuses:
        entry = manifest.get(status.id)
        how = (
            "manual"
            if entry.manual_only
            else "+".join(dict.fromkeys(s.kind for s in entry.sources if s.kind != "manual"))
        )
        lic = entry.license
        size = status.size if status.size is not None else (status.expected_size or entry.approx_size)
        approx = status.size is None and status.expected_size is None and size is not None
        table.add_row(
            entry.id,
            entry.shown_dest,
            f"[{styles.get(status.status, 'red')}]{STATUS_WORDS[status.status]}[/]",
            ("~" if approx else "") + _size(size),
            lic.id + ("" if licenses.accepted(lic.id) else "*"),
            how,
        )
        note = _note(status, entry)
        if note:
            notes.append(f"  {entry.id}: {note}")
    console.print(table)
    for line in notes:
        console.print(line, markup=False, highlight=False)
    console.print(f"data dir: {data_dir}", markup=False, highlight=False)
    hub = [manifest.get(st.id) for st in statuses if manifest.get(st.id).root == "torch-hub"]
    if hub:
        console.print(
            f"hub: torch hub's checkpoint cache {hub[0].path(data_dir).parent} (where face_alignment "
            "looks; set by TORCH_HOME)",
            markup=False,
            highlight=False,
        )
    used = {manifest.get(st.id).license.id for st in statuses}
    for lic in (lic for lic in manifest.licenses.values() if lic.id in used):
        mark = "accepted" if licenses.accepted(lic.id) else "* not yet accepted here"
        account = f"; account needed: {lic.register}" if lic.account and lic.register else ""
        console.print(f"licence {lic.id}: {lic.url} ({mark}{account})", markup=False, highlight=False)


def result_line(result: FileResult) -> str:
    """One line per fetched/imported file."""
    entry, action = result.entry, result.action
    if result.error is not None:
        return f"[FAIL] {entry.id:<19} {entry.shown_dest}: {error_code(result.error)}"
    status = result.status
    how = {
        "present": "already verified",
        "adopted": "present, trusted on first use",
        "downloaded": f"downloaded {_size(result.bytes)} in {result.seconds:.1f} s",
        "resumed": f"resumed, {_size(result.bytes)} more in {result.seconds:.1f} s",
        "imported": f"imported from {result.source}",
    }.get(action, action)
    check = ""
    if status is not None:
        check = {"verified": ", sha256 verified", "hash-unknown": ", no published hash"}.get(status.status, "")
        if status.hash_source == "first-use" and status.ok:
            check = ", sha256 matches first-use record"
    return f"[ok]   {entry.id:<19} {entry.shown_dest}: {how}{check}"


def manual_block(results: Iterable[FileResult]) -> List[str]:
    """'Download by hand' lines for files that failed for want of network, login or quota."""
    lines = []
    for result in results:
        if result.error is None or result.entry.id == "?":
            continue
        text = result.entry.manual_text()
        if text:
            lines.append(f"  {result.entry.dest}: {text}")
    if lines:
        lines.insert(0, "download by hand, then run `decaenv fetch --from <file> [<file>...]`:")
    return lines


class RichProgress(Progress):
    """rich progress bars on stderr: bytes, speed, ETA (one bar per file)."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as Bars,
        )

        self.bars = Bars(
            TextColumn("{task.description:<19}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self.task = None
        self.started = False

    def start(self, label: str, total: Optional[int], completed: int = 0) -> None:
        if not self.started:
            self.bars.start()
            self.started = True
        if self.task is None:
            self.task = self.bars.add_task(label, total=total, completed=completed)
        else:
            self.bars.reset(self.task, total=total, completed=completed, description=label)

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.bars.advance(self.task, n)

    def done(self) -> None:
        if self.task is not None:
            self.bars.stop_task(self.task)
            self.task = None

    def close(self) -> None:
        if self.started:
            self.bars.stop()
            self.started = False

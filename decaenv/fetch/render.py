"""Output of `decaenv fetch`: the JSON document, the `--list` table, result lines, rich progress bars.

The JSON and the human output are built from the same rows, so they cannot drift apart. rich is
imported only here, inside the functions that draw.
"""

from __future__ import annotations

import sys
from typing import Iterable, List, Optional

from decaenv.fetch.errors import error_code
from decaenv.fetch.manifest import Entry, Manifest
from decaenv.fetch.progress import Progress
from decaenv.fetch.records import Licenses
from decaenv.fetch.status import FileStatus

JSON_SCHEMA = 1
STATUS_WORDS = {
    "verified": "verified", "present": "present", "missing": "missing", "hash-unknown": "hash unknown",
    "size-mismatch": "size mismatch", "hash-mismatch": "hash mismatch", "invalid": "invalid",
}


def _size(n: Optional[int]) -> str:
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def entry_json(entry: Entry, data_dir, status: Optional[FileStatus], licenses: Licenses) -> dict:
    """One file's JSON object (see docs/commands/fetch.md for the schema)."""
    lic = entry.license
    accepted = licenses.accepted(lic.id)
    return {
        "id": entry.id,
        "dest": entry.dest,
        "path": str(entry.path(data_dir)),
        "root": entry.root,
        "group": entry.group,
        "default": entry.default,
        "description": entry.description,
        "status": status.status if status else None,
        "size": status.size if status else None,
        "expected_size": status.expected_size if status else entry.size,
        "approx_size": entry.approx_size,
        "sha256": status.sha256 if status else None,
        "expected_sha256": status.expected_sha256 if status else entry.sha256,
        "hash_source": status.hash_source if status else ("manifest" if entry.sha256 else None),
        "content": status.content if status else None,
        "detail": status.detail if status else "",
        "license": {"id": lic.id, "name": lic.name, "url": lic.url, "account": lic.account,
                    "accepted": accepted["accepted"] if accepted else None},
        "sources": [{"kind": s.kind, "url": s.browser_url() if s.kind != "https" or not s.url else s.url,
                     "archive": s.archive, "member": s.member, "code": s.code, "note": s.note}
                    for s in entry.sources],
    }


def result_json(result, data_dir, licenses: Licenses) -> dict:
    """A fetch/import result: the entry's object plus action, source, notes and the error.

    A `--from` path that matched no entry has `"id": null` and only the result fields."""
    err = result.error
    if result.entry.id == "?":
        return {"id": None, "action": "failed", "from": result.source, "notes": [], "quarantined": None,
                "error": {"code": error_code(err), "message": err.message, "hint": err.hint}}
    row = entry_json(result.entry, data_dir, result.status, licenses)
    row.update({
        "action": result.action,
        "from": result.source,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "notes": list(result.notes),
        "quarantined": err.quarantined if err else None,
        "error": None if err is None else {"code": error_code(err), "message": err.message, "hint": err.hint},
    })
    return row


def document(command: str, data_dir, manifest: Manifest, files: List[dict], ok: bool) -> dict:
    """The top-level `--json` document."""
    return {"schema": JSON_SCHEMA, "command": command, "data_dir": str(data_dir), "ok": ok,
            "manifest": {"name": manifest.name, "schema": manifest.schema, "path": manifest.origin},
            "files": files}


# ----------------------------------------------------------------------------------------------- human

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
        how = "manual" if entry.manual_only else "+".join(dict.fromkeys(
            s.kind for s in entry.sources if s.kind != "manual"))
        lic = entry.license
        size = status.size if status.size is not None else (status.expected_size or entry.approx_size)
        approx = status.size is None and status.expected_size is None and size is not None
        table.add_row(entry.id, entry.shown_dest, f"[{styles.get(status.status, 'red')}]{STATUS_WORDS[status.status]}[/]",
                      ("~" if approx else "") + _size(size), lic.id + ("" if licenses.accepted(lic.id) else "*"), how)
        note = _note(status, entry)
        if note:
            notes.append(f"  {entry.id}: {note}")
    console.print(table)
    for line in notes:
        console.print(line, markup=False, highlight=False)
    console.print(f"data dir: {data_dir}", markup=False, highlight=False)
    hub = [manifest.get(st.id) for st in statuses if manifest.get(st.id).root == "torch-hub"]
    if hub:
        console.print(f"hub: torch hub's checkpoint cache {hub[0].path(data_dir).parent} (where face_alignment "
                      "looks; set by TORCH_HOME)", markup=False, highlight=False)
    used = {manifest.get(st.id).license.id for st in statuses}
    for lic in (lic for lic in manifest.licenses.values() if lic.id in used):
        mark = "accepted" if licenses.accepted(lic.id) else "* not yet accepted here"
        account = f"; account needed: {lic.register}" if lic.account and lic.register else ""
        console.print(f"licence {lic.id}: {lic.url} ({mark}{account})", markup=False, highlight=False)


MARKS = {"present": "ok", "adopted": "ok", "downloaded": "ok", "resumed": "ok", "imported": "ok"}


def result_line(result) -> str:
    """One line per fetched/imported file."""
    entry, action = result.entry, result.action
    if result.error is not None:
        return f"[FAIL] {entry.id:<19} {entry.shown_dest}: {error_code(result.error)}"
    status = result.status
    how = {"present": "already verified", "adopted": "present, trusted on first use",
           "downloaded": f"downloaded {_size(result.bytes)} in {result.seconds:.1f} s",
           "resumed": f"resumed, {_size(result.bytes)} more in {result.seconds:.1f} s",
           "imported": f"imported from {result.source}"}.get(action, action)
    check = ""
    if status is not None:
        check = {"verified": ", sha256 verified", "hash-unknown": ", no published hash"}.get(status.status, "")
        if status.hash_source == "first-use" and status.ok:
            check = ", sha256 matches first-use record"
    return f"[ok]   {entry.id:<19} {entry.shown_dest}: {how}{check}"


def manual_block(results) -> List[str]:
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
        from rich.progress import (BarColumn, DownloadColumn, Progress as Bars, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        self.bars = Bars(TextColumn("{task.description:<19}"), BarColumn(), DownloadColumn(),
                         TransferSpeedColumn(), TimeRemainingColumn(),
                         console=Console(file=sys.stderr), transient=False)
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

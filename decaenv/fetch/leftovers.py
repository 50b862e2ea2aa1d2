"""A data dir's leftovers: partial downloads and the quarantine, found and removed (used by `decaenv cache`).

A partial is `.<name>.<host>.<pid>.<rand>.part` (+ `.part.json`) beside its destination (see `store`). One
whose owner is alive on this host, or that another host wrote in the last day, may still be in use and is
never removed. The quarantine (`<data>/.decaenv/quarantine/`, payloads refused by verification) is the
store's: listed and emptied by `Store.quarantine_entries` / `Store.clean_quarantine` (as `fetch --clean` does).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import List, Tuple

from decaenv._process import pid_alive
from decaenv.fetch.store import PART_SUFFIX, STALE_FOREIGN_PARTIAL_S, STATE_DIR, Store, hostname


def partial_files(root: os.PathLike) -> List[Path]:
    """Every partial download (and its `.part.json`) under the data dir `root`, sorted."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = []
    for folder, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if d != STATE_DIR]
        found += [
            Path(folder) / f for f in files if f.startswith(".") and f.endswith((PART_SUFFIX, PART_SUFFIX + ".json"))
        ]
    return sorted(found)


def partial_in_use(path: Path) -> bool:
    """True when the partial's writer may still be running (alive here, or a recent one from another host)."""
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    fields = stem[: -len(PART_SUFFIX)].rsplit(".", 2)
    here = f".{hostname()}"
    if len(fields) == 3 and fields[1].isdigit() and fields[0].endswith(here):
        return pid_alive(int(fields[1]))
    try:
        return time.time() - path.stat().st_mtime < STALE_FOREIGN_PARTIAL_S
    except OSError:
        return False


def quarantine_dir(root: os.PathLike) -> Path:
    """The data dir's quarantine folder (it may not exist)."""
    return Store(root).quarantine_dir


def quarantine_files(root: os.PathLike) -> List[Path]:
    """Every payload in the quarantine, sorted."""
    return Store(root).quarantine_entries()


def remove_partials(root: os.PathLike, *, dry_run: bool = False) -> Tuple[List[Path], List[Path]]:
    """Delete the partial downloads nobody is writing. Returns (removed, kept because in use)."""
    removed, kept = [], []
    for path in partial_files(root):
        if partial_in_use(path):
            kept.append(path)
            continue
        if not dry_run:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed, kept


def clear_quarantine(root: os.PathLike, *, dry_run: bool = False) -> List[Path]:
    """Empty the quarantine (`Store.clean_quarantine`). Returns the files removed (or that would be)."""
    files = quarantine_files(root)
    if files and not dry_run:
        Store(root).clean_quarantine()
    return files

"""Records kept in the data dir: the lock file (trust-on-first-use hashes, provenance) and licence acceptances.

`<data>/.decaenv/lockfile.json`:
    {"version": 1, "files": {"<id>": {"dest", "size", "sha256", "trust": "manifest" | "first-use",
                                      "source", "recorded"}}}
A file whose manifest entry has no sha256 is recorded as "first-use" the first time a verified copy is
installed; from then on every copy must match that record (like SSH's known_hosts). Entries with a
manifest hash are recorded too ("manifest"), for provenance.

`<data>/.decaenv/licenses.json`:
    {"version": 1, "accepted": {"<licence id>": {"name", "url", "accepted", "how"}}}
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Dict, Optional

from decaenv.fetch.statefile import read_section
from decaenv.fetch.store import STATE_DIR, private_dir, replace_private


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _read(path: Path, section: str) -> dict:
    """The document with only its well-formed `section` (malformed state is absent: `statefile`)."""
    return {"version": 1, section: read_section(path, section)}


def _write(path: Path, data: dict) -> None:
    private_dir(path.parent)
    replace_private(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


class LockFile:
    """The trust-on-first-use record of a data dir (read-modify-write under the run-dir lock)."""

    NAME = "lockfile.json"

    def __init__(self, data_dir: os.PathLike):
        self.path = Path(data_dir) / STATE_DIR / self.NAME

    def files(self) -> Dict[str, dict]:
        return read_section(self.path, "files")

    def get(self, entry_id: str) -> Optional[dict]:
        record = self.files().get(entry_id)
        ok = record is not None and isinstance(record.get("sha256"), str) and \
            isinstance(record.get("size", 0), int)
        return record if ok else None

    def record(self, entry_id: str, *, dest: str, size: int, sha256: str, trust: str, source: str) -> None:
        """Store (or refresh) the record of one installed file."""
        from decaenv.fetch.locks import file_lock

        with file_lock(self.path.parent / "run", "lockfile"):
            data = _read(self.path, "files")
            data["files"][entry_id] = {
                "dest": dest, "size": size, "sha256": sha256, "trust": trust, "source": source,
                "recorded": _now()}
            data["version"] = 1
            _write(self.path, data)

    def forget(self, entry_id: str) -> bool:
        """Drop a record (after the user decided the upstream file legitimately changed)."""
        from decaenv.fetch.locks import file_lock

        with file_lock(self.path.parent / "run", "lockfile"):
            data = _read(self.path, "files")
            if entry_id not in data["files"]:
                return False
            del data["files"][entry_id]
            _write(self.path, data)
            return True


class Licenses:
    """Which licences were accepted for this data dir, when and how."""

    NAME = "licenses.json"

    def __init__(self, data_dir: os.PathLike):
        self.path = Path(data_dir) / STATE_DIR / self.NAME

    def accepted(self, license_id: str) -> Optional[dict]:
        return read_section(self.path, "accepted").get(license_id)

    def accept(self, license_id: str, *, name: str, url: str, how: str) -> None:
        data = _read(self.path, "accepted")
        data["accepted"][license_id] = {"name": name, "url": url, "accepted": _now(), "how": how}
        data["version"] = 1
        _write(self.path, data)

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

from decaenv.fetch.store import STATE_DIR


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(tmp, path)


class LockFile:
    """The trust-on-first-use record of a data dir (read-modify-write under the run-dir lock)."""

    NAME = "lockfile.json"

    def __init__(self, data_dir: os.PathLike):
        self.path = Path(data_dir) / STATE_DIR / self.NAME

    def files(self) -> Dict[str, dict]:
        files = _read(self.path).get("files", {})
        return files if isinstance(files, dict) else {}

    def get(self, entry_id: str) -> Optional[dict]:
        record = self.files().get(entry_id)
        return record if isinstance(record, dict) and record.get("sha256") else None

    def record(self, entry_id: str, *, dest: str, size: int, sha256: str, trust: str, source: str) -> None:
        """Store (or refresh) the record of one installed file."""
        from decaenv.fetch.locks import file_lock

        with file_lock(self.path.parent / "run", "lockfile"):
            data = _read(self.path) or {"version": 1, "files": {}}
            data.setdefault("files", {})[entry_id] = {
                "dest": dest, "size": size, "sha256": sha256, "trust": trust, "source": source,
                "recorded": _now()}
            data["version"] = 1
            _write(self.path, data)

    def forget(self, entry_id: str) -> bool:
        """Drop a record (after the user decided the upstream file legitimately changed)."""
        from decaenv.fetch.locks import file_lock

        with file_lock(self.path.parent / "run", "lockfile"):
            data = _read(self.path)
            if entry_id not in data.get("files", {}):
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
        record = _read(self.path).get("accepted", {}).get(license_id)
        return record if isinstance(record, dict) else None

    def accept(self, license_id: str, *, name: str, url: str, how: str) -> None:
        data = _read(self.path) or {"version": 1, "accepted": {}}
        data.setdefault("accepted", {})[license_id] = {"name": name, "url": url, "accepted": _now(), "how": how}
        data["version"] = 1
        _write(self.path, data)

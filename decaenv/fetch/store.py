"""The data dir as a store: staging files beside destinations, atomic install, quarantine, disk preflight.

Layout (DECA's `data/` plus decaenv's own state folder, which DECA ignores):
    data/<dest>                                   installed files, exactly where DECA reads them
    data/.<name>.<host>.<pid>.<rand>.part         a download in progress (process-unique, resumable)
    data/.<name>.<host>.<pid>.<rand>.part.json    what that partial is (source, validator, total)
    data/.decaenv/lockfile.json                   trust-on-first-use hashes and provenance
    data/.decaenv/licenses.json                   licence acceptances
    data/.decaenv/quarantine/                     payloads refused (hash mismatch, HTML, ...)
    data/.decaenv/run/<id>.lock                  per-file locks (holding their holder: decaenv._process)
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from decaenv._process import pid_alive
from decaenv.errors import UsageError
from decaenv.fetch.errors import fail

log = logging.getLogger("decaenv.fetch")

STATE_DIR = ".decaenv"
PART_SUFFIX = ".part"
DISK_MARGIN = 64 << 20  # keep this much free beyond what a download needs
STALE_FOREIGN_PARTIAL_S = 24 * 3600


def hostname() -> str:
    """This machine's name, safe for file names (no dots)."""
    return "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname())[:40] or "host"


@dataclass
class Staging:
    """A process-unique partial file beside its destination, plus what it was downloaded from."""

    path: Path
    meta: dict

    @property
    def meta_path(self) -> Path:
        return self.path.with_name(self.path.name + ".json")

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def save_meta(self, **fields) -> None:
        self.meta.update(fields)
        tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        tmp.write_text(json.dumps(self.meta), "utf-8")
        os.replace(tmp, self.meta_path)

    def truncate(self) -> None:
        with open(self.path, "r+b") as fh:
            fh.truncate(0)

    def discard(self) -> None:
        for p in (self.path, self.meta_path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


class Store:
    """A data dir: where entries go, where partials live, and decaenv's state folder."""

    def __init__(self, root: os.PathLike):
        self.root = Path(root)

    # -- folders ------------------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def quarantine_dir(self) -> Path:
        return self.state_dir / "quarantine"

    def ensure(self, *, create_parents: bool = False) -> None:
        """Create the data dir (its parent must exist unless `create_parents`) and the state folders."""
        if not self.root.is_dir():
            if not create_parents and not self.root.parent.is_dir():
                raise UsageError(f"cannot create data dir {self.root}: {self.root.parent} does not exist",
                                 hint="create the parent folder first or pass another --data-dir")
            self.root.mkdir(parents=create_parents, exist_ok=True)
        for folder in (self.state_dir, self.run_dir):
            folder.mkdir(exist_ok=True)

    # -- staging ------------------------------------------------------------------------------------
    def new_staging(self, dest: Path, **meta) -> Staging:
        """An empty, process-unique partial file beside `dest`."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        name = f".{dest.name}.{hostname()}.{os.getpid()}.{secrets.token_hex(4)}{PART_SUFFIX}"
        path = dest.with_name(name)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        os.close(fd)
        staging = Staging(path, {"dest": dest.name, "pid": os.getpid(), "host": hostname(), **meta})
        staging.save_meta()
        return staging

    def partials(self, dest: Path) -> List[Path]:
        """All partial files of `dest` (any owner)."""
        prefix = f".{dest.name}."
        try:
            names = os.listdir(dest.parent)
        except FileNotFoundError:
            return []
        return [dest.parent / n for n in names if n.startswith(prefix) and n.endswith(PART_SUFFIX)]

    @staticmethod
    def _owner(dest: Path, part: Path):
        middle = part.name[len(dest.name) + 2: -len(PART_SUFFIX)]
        fields = middle.split(".")
        if len(fields) != 3 or not fields[1].isdigit():  # e.g. ".x.bak.<host>.<pid>.<rand>.part" is not ours
            return None, None
        return fields[0], int(fields[1])

    def adopt_partial(self, dest: Path, source_key: str) -> Optional[Staging]:
        """Take over the largest partial of `dest` left by a dead process for the same source.

        Partials of live processes are left alone; ones for another source, or unreadable ones, are
        deleted. The adopted file is renamed to this process's own unique name.
        """
        best: Optional[Staging] = None
        for part in sorted(self.partials(dest), key=lambda p: p.stat().st_size if p.exists() else 0, reverse=True):
            host, pid = self._owner(dest, part)
            if host is None:
                continue
            if host == hostname() and pid is not None and pid != os.getpid() and pid_alive(pid):
                continue
            if host != hostname():
                try:
                    age = time.time() - part.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age < STALE_FOREIGN_PARTIAL_S:
                    continue
            old = Staging(part, {})
            try:
                old.meta = json.loads(old.meta_path.read_text("utf-8"))
            except (OSError, ValueError):
                old.meta = {}
            if best is None and old.meta.get("source") == source_key and old.size() > 0:
                fresh = self.new_staging(dest)
                os.replace(part, fresh.path)
                old.discard()
                fresh.meta = {**old.meta, "pid": os.getpid(), "host": hostname(), "adopted_from": pid}
                fresh.save_meta()
                log.info("resuming %s from %d bytes left by process %s", dest.name, fresh.size(), pid)
                best = fresh
            else:
                old.discard()
        return best

    # -- install / quarantine -----------------------------------------------------------------------
    def install(self, tmp: Path, dest: Path) -> None:
        """Atomically move a verified file into place (fsync'd, umask permissions)."""
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
        try:
            dir_fd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass

    def quarantine(self, path: Path, name: str, reason: str) -> Path:
        """Move a refused payload out of the way; returns where it went (never a destination)."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.quarantine_dir / f"{stamp}-{os.getpid()}-{reason}-{name}"
        try:
            os.replace(path, target)
        except OSError:
            shutil.move(str(path), str(target))
        for sidecar in (path.with_name(path.name + ".json"),):
            try:
                sidecar.unlink()
            except FileNotFoundError:
                pass
        return target

    def quarantine_bytes(self, data: bytes, name: str, reason: str) -> Path:
        """Keep a refused payload that never reached a staging file (an HTML page, a first chunk)."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.quarantine_dir / f"{stamp}-{os.getpid()}-{reason}-{name}"
        target.write_bytes(data)
        return target

    # -- disk ---------------------------------------------------------------------------------------
    def preflight(self, need: Optional[int], what: str) -> None:
        """Fail early when the data dir's filesystem lacks `need` bytes (plus a margin)."""
        if not need:
            return
        free = shutil.disk_usage(self.root).free
        if free < need + DISK_MARGIN:
            raise fail("disk-space", f"not enough disk space for {what}: needs {_mb(need)} "
                       f"(+{_mb(DISK_MARGIN)} margin), {_mb(free)} free in {self.root}",
                       hint="free some space or pass another --data-dir")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"

"""The data dir as a store: staging files beside destinations, atomic install, quarantine, disk preflight.

Layout (DECA's `data/` plus decaenv's own state folder, which DECA ignores):
    data/<dest>                                   installed files, exactly where DECA reads them
    data/.<name>.<host>.<pid>.<rand>.part         a download in progress (process-unique, resumable)
    data/.<name>.<host>.<pid>.<rand>.part.json    what that partial is (source, validator, total)
    data/.decaenv/lockfile.json                   trust-on-first-use hashes and provenance
    data/.decaenv/licenses.json                   licence acceptances
    data/.decaenv/quarantine/                     payloads refused (hash mismatch, HTML, ...), capped in size
                                                  and age (`decaenv fetch --clean` empties it)
    data/.decaenv/kept/                           your own files decaenv replaced (never deleted by decaenv)
    data/.decaenv/run/<id>.lock                  per-file locks (holding their holder: decaenv._process)

decaenv's state (`.decaenv/` and everything in it, partial files) is private: folders 0700, files 0600.
Installed files get the usual umask permissions.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from decaenv._process import pid_alive
from decaenv.errors import UsageError
from decaenv.fetch.errors import fetch_error

log = logging.getLogger("decaenv.fetch")

STATE_DIR = ".decaenv"
PART_SUFFIX = ".part"
DISK_MARGIN = 64 << 20  # keep this much free beyond what a download needs
STALE_FOREIGN_PARTIAL_S = 24 * 3600
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
#: Quarantine caps (environment overrides: DECAENV_QUARANTINE_MAX_MB, DECAENV_QUARANTINE_MAX_DAYS).
QUARANTINE_MAX_MB, QUARANTINE_MAX_DAYS = 1024, 30
_PARTIAL = re.compile(
    r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.(?P<rand>[0-9a-f]{8})"
    r"\.part(?P<side>\.json(?:\.tmp)?)?$"
)
_POST_TMP = re.compile(r"^\.(?P<name>.+\.npz)\.(?P<pid>\d+)\.partial$")  # `loaders.flame.convert_to_npz`


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed and make it 0700 (decaenv's own state folders)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        try:
            os.chmod(path, PRIVATE_DIR)
        except PermissionError:  # a shared data dir whose state folder another user created
            log.warning("cannot make %s private (0700): it belongs to another user", path)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new or truncated file with mode 0600 (removed again if the write fails)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        _unlink(path)
        raise


def replace_private(path: Path, data: bytes) -> None:
    """Atomically replace `path` by `data` (temp file 0600 + rename); no temp file is left on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_private(tmp, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


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
        write_private(tmp, json.dumps(self.meta).encode("utf-8"))
        try:
            os.replace(tmp, self.meta_path)
        except BaseException:
            _unlink(tmp)
            raise

    def truncate(self) -> None:
        with open(self.path, "r+b") as fh:
            fh.truncate(0)

    def discard(self) -> None:
        for p in (self.path, self.meta_path, self.meta_path.with_name(self.meta_path.name + ".tmp")):
            _unlink(p)


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

    @property
    def kept_dir(self) -> Path:
        return self.state_dir / "kept"

    def ensure(self, *, create_parents: bool = False) -> None:
        """Create the data dir (its parent must exist unless `create_parents`) and the state folders."""
        if not self.root.is_dir():
            if not create_parents and not self.root.parent.is_dir():
                raise UsageError(
                    f"cannot create data dir {self.root}: {self.root.parent} does not exist",
                    hint="create the parent folder first or pass another --data-dir",
                )
            self.root.mkdir(parents=create_parents, exist_ok=True)
        for folder in (self.state_dir, self.run_dir):
            private_dir(folder)
        self.sweep()

    def sweep(self) -> List[Path]:
        """Delete what dead processes of this host left behind and nobody can resume: partial extractions
        and imports, orphan `.part.json` files, temp files of interrupted writes. Returns what went."""
        gone: List[Path] = []
        try:
            folders = [self.root] + [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            return gone
        for folder in folders:
            try:
                stale = [path for path in folder.iterdir() if self._stale(path)]
            except OSError:  # an unreadable sub-folder is not ours to clean
                continue
            for path in stale:
                _unlink(path)
                gone.append(path)
        if gone:
            log.info("removed %d file(s) left by interrupted runs: %s", len(gone), ", ".join(p.name for p in gone))
        return gone

    def _stale(self, path: Path) -> bool:
        match = _PARTIAL.match(path.name)
        if match is None:
            post = _POST_TMP.match(path.name)
            return post is not None and _dead(int(post["pid"]))
        if match["host"] != hostname() or not _dead(int(match["pid"])):
            return False
        side = match["side"] or ""
        if side.endswith(".tmp"):
            return True
        part = path if not side else path.with_name(path.name[: -len(side)])
        meta = part.with_name(part.name + ".json")
        try:
            source = json.loads(meta.read_text("utf-8")).get("source", "")
        except (OSError, ValueError, AttributeError):
            source = ""
        resumable = isinstance(source, str) and not source.startswith(("archive:", "import:")) and source != ""
        if side:  # the metadata: stale when its partial is gone or is not resumable
            return not part.exists() or not resumable
        return not resumable or not path.stat().st_size

    # -- staging ------------------------------------------------------------------------------------
    def new_staging(self, dest: Path, **meta) -> Staging:
        """An empty, process-unique partial file beside `dest`."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        name = f".{dest.name}.{hostname()}.{os.getpid()}.{secrets.token_hex(4)}{PART_SUFFIX}"
        path = dest.with_name(name)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
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
        middle = part.name[len(dest.name) + 2 : -len(PART_SUFFIX)]
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
                meta: object = json.loads(old.meta_path.read_text("utf-8"))
            except (OSError, ValueError):
                meta = {}
            old.meta = meta if isinstance(meta, dict) else {}
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
            if os.name == "posix":
                os.fchmod(fh.fileno(), 0o666 & ~_umask())
        os.replace(tmp, dest)
        try:
            dir_fd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass

    def _target(self, folder: Path, name: str, reason: str = "") -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        label = f"{reason}-" if reason else ""
        return private_dir(folder) / f"{stamp}-{os.getpid()}-{secrets.token_hex(2)}-{label}{name}"

    def quarantine(self, path: Path, name: str, reason: str) -> Path:
        """Move a refused payload out of the way (0600); returns where it went (never a destination)."""
        target = self._target(self.quarantine_dir, name, reason)
        try:
            os.replace(path, target)
        except OSError:
            shutil.move(str(path), str(target))
        if os.name == "posix":
            os.chmod(target, PRIVATE_FILE)
        _unlink(path.with_name(path.name + ".json"))
        self.prune_quarantine(keep=target)
        return target

    def quarantine_bytes(self, data: bytes, name: str, reason: str) -> Path:
        """Keep a refused payload that never reached a staging file (an HTML page, a first chunk), 0600."""
        target = self._target(self.quarantine_dir, name, reason)
        write_private(target, data)
        self.prune_quarantine(keep=target)
        return target

    def keep_aside(self, path: Path, name: str) -> Path:
        """Move a file decaenv did not create out of a destination it is about to write (never deleted)."""
        target = self._target(self.kept_dir, name)
        try:
            os.replace(path, target)
        except OSError:  # a destination on another filesystem (a symlinked sub-folder)
            shutil.move(str(path), str(target))
        return target

    def quarantine_entries(self) -> List[Path]:
        try:
            return sorted(p for p in self.quarantine_dir.iterdir() if p.is_file())
        except FileNotFoundError:
            return []

    def prune_quarantine(self, keep: Optional[Path] = None) -> List[Path]:
        """Drop quarantined payloads older than the age cap, then the oldest until the size cap holds
        (`keep`, the payload just named in an error message, always stays). Returns what went."""
        max_bytes = _env_number("DECAENV_QUARANTINE_MAX_MB", QUARANTINE_MAX_MB) * 1e6
        max_age = _env_number("DECAENV_QUARANTINE_MAX_DAYS", QUARANTINE_MAX_DAYS) * 86400
        now, gone = time.time(), []
        entries = []
        for path in self.quarantine_entries():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
        entries.sort()
        total = sum(size for _m, size, _p in entries)
        for mtime, size, path in entries:
            if path == keep:
                continue
            if now - mtime > max_age or total > max_bytes:
                _unlink(path)
                total -= size
                gone.append(path)
        return gone

    def clean_quarantine(self) -> Tuple[int, int]:
        """Empty the quarantine (`decaenv fetch --clean`). Returns (files removed, bytes freed)."""
        count = freed = 0
        for path in self.quarantine_entries():
            try:
                freed += path.stat().st_size
                path.unlink()
                count += 1
            except FileNotFoundError:
                pass
        return count, freed

    # -- disk ---------------------------------------------------------------------------------------
    def preflight(self, need: Optional[int], what: str) -> None:
        """Fail early when the data dir's filesystem lacks `need` bytes (plus a margin)."""
        if not need:
            return
        free = shutil.disk_usage(self.root).free
        if free < need + DISK_MARGIN:
            raise fetch_error(
                "disk-space",
                f"not enough disk space for {what}: needs {_mb(need)} "
                f"(+{_mb(DISK_MARGIN)} margin), {_mb(free)} free in {self.root}",
                hint="free some space or pass another --data-dir",
            )


def _dead(pid: int) -> bool:
    return pid != os.getpid() and not pid_alive(pid)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"

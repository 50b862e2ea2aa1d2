"""Per-file locks with holder metadata: concurrent fetchers wait; a dead holder's lock is taken over.

The lock itself is `filelock.FileLock` (flock on POSIX), which the kernel releases when its holder
dies, even by `kill -9`. Beside it an `.owner` file names the holder (pid, host, start time, file), so
a waiting process can say whom it waits for, and a process that acquires a lock whose owner file was
left behind knows it is taking over from a dead fetch. On filesystems without flock (some NFS/CIFS
mounts) it falls back to an exclusive-create lock with a heartbeat: a holder refreshes it every
`HEARTBEAT_S`; one that is older than `LEASE_S`, or whose pid is dead on this host, is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from decaenv._process import pid_alive
from decaenv.fetch.store import hostname

log = logging.getLogger("decaenv.fetch")

WAIT_REPORT_S = 10.0
POLL_S = 0.2
HEARTBEAT_S = 30.0
LEASE_S = 300.0


def _read_owner(path: Path) -> Optional[dict]:
    try:
        data = json.loads(path.read_text("utf-8"))
        ok = isinstance(data, dict) and isinstance(data.get("pid", 0), int) and \
            isinstance(data.get("started", 0), (int, float))
        return data if ok else None  # malformed: treated as absent
    except (OSError, ValueError):
        return None


def _describe(owner: Optional[dict]) -> str:
    if not owner:
        return "another process"
    since = time.strftime("%H:%M:%S", time.localtime(owner.get("started", 0)))
    return f"process {owner.get('pid')} on {owner.get('host')} (since {since})"


def _owner_dead(owner: Optional[dict]) -> bool:
    return bool(owner) and owner.get("host") == hostname() and not pid_alive(int(owner.get("pid", 0)))


@contextlib.contextmanager
def file_lock(run_dir: Path, key: str, *, on_wait: Optional[Callable[[str], None]] = None,
              timeout: Optional[float] = None) -> Iterator[dict]:
    """Hold the lock for `key` (an entry id) while the block runs.

    Args:
        run_dir: folder of the lock files (`<data>/.decaenv/run`).
        key: what is locked.
        on_wait: called with a one-line message when the lock is busy (and every `WAIT_REPORT_S`).
        timeout: give up after this many seconds (None: wait as long as the holder lives).

    Yields:
        info dict: {"waited": seconds, "took_over": owner dict of a dead holder or None}.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_path, owner_path = run_dir / f"{key}.lock", run_dir / f"{key}.owner"
    me = {"pid": os.getpid(), "host": hostname(), "started": time.time(), "key": key}
    start = time.monotonic()
    try:
        lock = _FlockLock(lock_path)
        lock.acquire(_waiter(owner_path, on_wait, start, timeout, key))
    except NotImplementedError:
        log.debug("flock unsupported under %s: using a heartbeat lock", run_dir)
        lock = _SoftLock(lock_path.with_suffix(".softlock"), me)
        lock.acquire(_waiter(lock.path, on_wait, start, timeout, key))
    previous = _read_owner(owner_path)
    took_over = previous if previous and previous.get("pid") != os.getpid() else None
    if took_over:
        log.info("took over the lock of %s, which left it behind (%s)", key, _describe(took_over))
    owner_path.write_text(json.dumps(me), "utf-8")
    try:
        yield {"waited": time.monotonic() - start, "took_over": took_over}
    finally:
        with contextlib.suppress(OSError):
            owner_path.unlink()
        lock.release()


def _waiter(owner_path: Path, on_wait, start: float, timeout: Optional[float], key: str) -> Callable[[], None]:
    """The function run between acquisition attempts: reports whom we wait for, enforces the timeout."""
    from decaenv.fetch.errors import fail

    last = [None]

    def between() -> None:
        now = time.monotonic()
        if timeout is not None and now - start > timeout:
            raise fail("locked", f"{key} is locked by {_describe(_read_owner(owner_path))}",
                       hint="wait for it to finish, or stop that process")
        if on_wait and (last[0] is None or now - last[0] >= WAIT_REPORT_S):
            last[0] = now
            on_wait(f"waiting for {_describe(_read_owner(owner_path))}, which is fetching {key}")

    return between


class _FlockLock:
    def __init__(self, path: Path):
        from filelock import FileLock

        self._lock = FileLock(str(path))

    def acquire(self, between: Callable[[], None]) -> None:
        from filelock import Timeout

        while True:
            try:
                self._lock.acquire(timeout=POLL_S)
                return
            except Timeout:
                between()
            except OSError as exc:
                if exc.errno in (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP):
                    raise NotImplementedError(str(exc)) from None
                raise

    def release(self) -> None:
        self._lock.release()


class _SoftLock:
    """Exclusive-create lock file holding its owner, refreshed by a heartbeat thread."""

    def __init__(self, path: Path, me: dict):
        self.path, self.me = path, me
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _stale(self) -> bool:
        owner = _read_owner(self.path)
        if _owner_dead(owner):
            return True
        try:
            return time.time() - self.path.stat().st_mtime > LEASE_S
        except FileNotFoundError:
            return False

    def acquire(self, between: Callable[[], None]) -> None:
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    log.info("taking over stale lock %s (%s)", self.path.name, _describe(_read_owner(self.path)))
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                    continue
                between()
                time.sleep(POLL_S)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(self.me, fh)
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
            return

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            if (_read_owner(self.path) or {}).get("pid") == os.getpid():
                self.path.unlink()

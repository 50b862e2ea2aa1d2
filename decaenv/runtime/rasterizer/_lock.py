"""decaenv's build lock: a file created with O_EXCL holding the owner's pid, host and start time.

Unlike torch's FileBaton (which waits forever on a lock left by a killed build, FM06), this lock:
    * takes over a lock whose owner is dead: same host and the pid no longer runs, or runs a process
      started after the lock was written (the pid was reused);
    * takes over a lock that is older than `STALE_AFTER_S` when its host cannot be checked (another host,
      unreadable content);
    * waits at most `timeout` seconds for a live owner, then raises BuildError naming it.
Taking over is serialised by a short-lived second lock (`<lock>.break`) so two waiters cannot both
remove the stale lock and one of them delete the other's fresh lock.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

from decaenv._process import pid_alive, process_start_time
from decaenv.errors import BuildError

STALE_AFTER_S = 6 * 3600  # a build never takes this long: a lock this old from another host is stale
BREAK_STALE_S = 30  # the break lock is held for milliseconds; older means its owner died


def read_holder(path: Path) -> Optional[dict]:
    """The lock's content ({pid, host, started, purpose}), or None if missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def holder_is_dead(holder: Optional[dict], path: Path) -> bool:
    """Whether the lock at `path` with content `holder` was left by a process that no longer runs."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False  # it just went away: not ours to break, retry
    if not holder or not isinstance(holder.get("pid"), int):
        return age > 5  # a lock is written in microseconds: empty or garbled for 5 s means a crash
    if holder.get("host") != socket.gethostname():
        return age > STALE_AFTER_S
    if not pid_alive(holder["pid"]):
        return True
    started = process_start_time(holder["pid"])
    return started is not None and started > float(holder.get("started", 0)) + 1.0


def describe_holder(path: Path) -> Optional[str]:
    """'pid 123 on host x since 12:00:01 (purpose)' for a live lock, None when free or stale."""
    holder = read_holder(path)
    if not path.exists() or holder_is_dead(holder, path):
        return None
    if not holder:
        return f"an unknown process (lock {path})"
    since = time.strftime("%H:%M:%S", time.localtime(float(holder.get("started", 0))))
    return (f"pid {holder.get('pid')} on host {holder.get('host')} since {since} "
            f"({holder.get('purpose', 'build')}; lock {path})")


class BuildLock:
    """Exclusive lock on a build folder; use as a context manager.

    Args:
        path: the lock file.
        timeout: seconds to wait for a live owner before raising BuildError.
        purpose: shown to whoever waits ("building the cpu rasterizer").
    """

    def __init__(self, path: Path, timeout: float, purpose: str = "decaenv build", poll: float = 0.2):
        self.path, self.timeout, self.purpose, self.poll = Path(path), timeout, purpose, poll
        self.took_over: Optional[dict] = None

    def _try_create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        content = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                   "purpose": self.purpose}
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(content, handle)
        return True

    def _break_if_stale(self) -> None:
        holder = read_holder(self.path)
        if not holder_is_dead(holder, self.path):
            return
        guard = self.path.with_name(self.path.name + ".break")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if time.time() - guard.stat().st_mtime > BREAK_STALE_S:
                guard.unlink(missing_ok=True)
            return
        try:
            os.close(fd)
            if read_holder(self.path) == holder:  # still the same stale lock: nobody took it meanwhile
                self.path.unlink(missing_ok=True)
                self.took_over = holder or {}
        finally:
            guard.unlink(missing_ok=True)

    def acquire(self) -> "BuildLock":
        deadline = time.monotonic() + self.timeout
        while not self._try_create():
            self._break_if_stale()
            if self._try_create():
                break
            if time.monotonic() >= deadline:
                who = describe_holder(self.path) or f"another process (lock {self.path})"
                raise BuildError(
                    f"another decaenv build is running: {who}; gave up after {self.timeout:g} s",
                    hint="wait for it to finish and retry; if that process is gone, delete the lock file",
                    path=self.path)
            time.sleep(self.poll)
        return self

    def release(self) -> None:
        holder = read_holder(self.path)
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "BuildLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

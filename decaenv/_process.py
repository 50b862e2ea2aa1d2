"""Other processes on this host: liveness, start time, killing a process tree, and decaenv's one
inter-process lock (used by `decaenv fetch` per data file and by `decaenv build` per build folder).

The lock is a file created with O_EXCL holding its owner (pid, host, start time, purpose, a token). It
works on every filesystem (no flock, so NFS/CIFS too) and survives its holder's death, `kill -9`
included: a waiter takes over a lock whose owner is dead (same host and the pid no longer runs, or runs
a process started after the lock was written: the pid was reused); a lock from another host, or one
whose content is unreadable, is taken over once its holder stopped refreshing it (a heartbeat thread
touches it every `HEARTBEAT_S`) for `LEASE_S`. Taking over is serialised by a short-lived second lock
(`<lock>.break`) so two waiters cannot both remove the stale lock and one delete the other's fresh one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HEARTBEAT_S = 30.0
LEASE_S = 300.0  # a live holder refreshes its lock every HEARTBEAT_S: this old means it is gone
GARBLED_S = 5.0  # a lock is written in microseconds: empty or garbled for this long means a crash
BREAK_STALE_S = 30.0  # the break lock is held for milliseconds; older means its owner died
WAIT_REPORT_S = 10.0


def pid_alive(pid: int) -> bool:
    """True when a process with this pid runs on this host (never signals it)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def process_start_time(pid: int) -> Optional[float]:
    """Epoch seconds at which `pid` started (Linux /proc), or None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


# -- process trees ----------------------------------------------------------------------------------------
def new_process_group() -> Dict[str, Any]:
    """Popen keyword arguments that put the child in its own process group (killable as a whole)."""
    if os.name == "nt":
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    return {"start_new_session": True}


def kill_tree(proc: subprocess.Popen, wait: float = 10.0) -> None:
    """Kill a process started with `new_process_group()` and everything it spawned, then reap it (waiting
    at most `wait` seconds).

    The process group is killed, and on Linux also every descendant found through /proc's parent links and
    every process still holding its output pipes, so a child that left the group with `setsid` (a new
    session and group) dies too, even after re-parenting. Not guaranteed: a descendant that re-parented
    and closed its copies of the pipes cannot be traced (it no longer blocks anyone either).
    """
    if proc.poll() is not None:
        return  # reaped: its process-group id may already belong to someone else
    escaped = descendants(proc.pid) + pipe_holders(proc) if os.name == "posix" else []
    try:
        if os.name == "nt":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, timeout=10)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, subprocess.SubprocessError):
        pass
    _kill_all(escaped)
    try:
        proc.kill()
    except OSError:
        pass
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        pass


def _kill_all(pids: List[int]) -> None:
    for pid in pids:
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def pipe_holders(proc: subprocess.Popen) -> List[int]:
    """Pids (other than ours) holding `proc`'s stdout/stderr pipes open — descendants that escaped its
    process group, even after they were re-parented (Linux /proc; empty elsewhere)."""
    targets = set()
    for stream in (proc.stdout, proc.stderr):
        try:
            if stream is not None and not stream.closed:
                targets.add(f"pipe:[{os.fstat(stream.fileno()).st_ino}]")
        except (OSError, ValueError):
            continue
    if not targets:
        return []
    found = []
    try:
        names = [n for n in os.listdir("/proc") if n.isdigit() and int(n) != os.getpid()]
    except OSError:
        return []
    for name in names:
        try:
            links = {os.readlink(f"/proc/{name}/fd/{fd}") for fd in os.listdir(f"/proc/{name}/fd")}
        except OSError:
            continue
        if links & targets and _parent(int(name)) != os.getpid():
            found.append(int(name))  # our own children (other workers, or one between fork and exec) are not escapes
    return found


def _parent(pid: int) -> Optional[int]:
    """`pid`'s parent pid from /proc (None when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(root: int) -> List[int]:
    """Pids of all live descendants of `root`, from /proc (Linux; empty elsewhere)."""
    children: Dict[int, List[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


# -- the lock -----------------------------------------------------------------------------------------------
class LockBusy(Exception):
    """A lock stayed held by a live owner for longer than the caller's timeout.

    Attributes:
        holder: who holds it ("process 123 on host x since 12:00:01 (fetching y)"). path: the lock file.
    """

    def __init__(self, holder: str, path: Path):
        super().__init__(f"{path} is held by {holder}")
        self.holder, self.path = holder, path


def read_holder(path: Path) -> Optional[dict]:
    """The lock's content ({pid, host, started, purpose, token}), or None if missing, unreadable or malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    well_formed = (
        isinstance(data, dict)
        and isinstance(data.get("pid"), int)
        and isinstance(data.get("started", 0), (int, float))
        and not isinstance(data.get("started", 0), bool)
    )
    return data if well_formed else None


def holder_is_dead(holder: Optional[dict], path: Path) -> bool:
    """Whether the lock at `path` with content `holder` was left by a process that no longer holds it."""
    try:
        age = time.time() - Path(path).stat().st_mtime
    except OSError:
        return False  # it just went away: not ours to break, retry
    if not holder:
        return age > GARBLED_S
    if holder.get("host") != socket.gethostname():
        return age > LEASE_S
    if not pid_alive(holder["pid"]):
        return True
    started = process_start_time(holder["pid"])
    return started is not None and started > float(holder.get("started", 0)) + 1.0


def describe_holder(path: Path) -> Optional[str]:
    """'process 123 on host x since 12:00:01 (purpose)' for a live lock, None when free or stale."""
    holder = read_holder(path)
    if not Path(path).exists() or holder_is_dead(holder, path):
        return None
    return _describe(holder, path)


def _describe(holder: Optional[dict], path: Path) -> str:
    if not holder:
        return f"an unknown process (lock {path})"
    since = time.strftime("%H:%M:%S", time.localtime(float(holder.get("started", 0))))
    return (
        f"process {holder.get('pid')} on host {holder.get('host')} since {since} ({holder.get('purpose', 'decaenv')})"
    )


class ProcessLock:
    """Exclusive inter-process lock on a file; use as a context manager.

    Args:
        path: the lock file (its folder is created).
        timeout: seconds to wait for a live owner before raising LockBusy (None: as long as it lives).
        purpose: shown to whoever waits ("fetching deca_model.tar", "building the cpu rasterizer").
        on_wait: called with "waiting for <holder>" when the lock is busy, then every `WAIT_REPORT_S`.

    After `acquire`, `took_over` is the content of a dead holder's lock that was taken over (or None) and
    `waited` the seconds spent waiting.
    """

    def __init__(
        self,
        path: Path,
        timeout: Optional[float] = None,
        purpose: str = "decaenv",
        on_wait: Optional[Callable[[str], None]] = None,
        poll: float = 0.2,
    ):
        self.path, self.timeout, self.purpose, self.on_wait, self.poll = Path(path), timeout, purpose, on_wait, poll
        self.took_over: Optional[dict] = None
        self.waited = 0.0
        self._token = uuid.uuid4().hex
        self._stop = threading.Event()

    def _try_create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        content = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "purpose": self.purpose,
            "token": self._token,
        }
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
            try:
                if time.time() - guard.stat().st_mtime > BREAK_STALE_S:
                    guard.unlink(missing_ok=True)
            except OSError:
                pass
            return
        try:
            os.close(fd)
            if read_holder(self.path) == holder:  # still the same stale lock: nobody took it meanwhile
                self.path.unlink(missing_ok=True)
                self.took_over = holder or {}
        finally:
            guard.unlink(missing_ok=True)

    def acquire(self) -> "ProcessLock":
        start = time.monotonic()
        reported: Optional[float] = None
        while not self._try_create():
            self._break_if_stale()
            if self._try_create():
                break
            now = time.monotonic()
            who = _describe(read_holder(self.path), self.path)
            if self.timeout is not None and now - start >= self.timeout:
                raise LockBusy(who, self.path)
            if self.on_wait and (reported is None or now - reported >= WAIT_REPORT_S):
                reported = now
                self.on_wait(f"waiting for {who}")
            time.sleep(self.poll)
        self.waited = time.monotonic() - start
        threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {self.path.name}").start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            if (read_holder(self.path) or {}).get("token") != self._token:
                return  # taken over (we were stalled past the lease): never refresh someone else's lock
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        """Remove the lock if it is still ours (never someone else's that replaced it)."""
        self._stop.set()
        if (read_holder(self.path) or {}).get("token") == self._token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "ProcessLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

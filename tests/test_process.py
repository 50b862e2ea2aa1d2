"""decaenv's one inter-process lock (`decaenv._process.ProcessLock`, used by fetch and build) and its
process helpers: dead, killed (-9), reused-pid, other-host and garbled holders; waiting and timing out."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from decaenv import _process
from decaenv._process import LockBusy, ProcessLock, describe_holder, kill_tree, new_process_group, process_start_time


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(path: Path, pid: int, host: str = None, started: float = None, age: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "pid": pid,
                "host": host or socket.gethostname(),
                "started": started or time.time() - age,
                "purpose": "test",
            }
        )
    )
    if age:
        os.utime(path, (time.time() - age, time.time() - age))


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    lock = tmp_path / "build.lock"
    _write_lock(lock, _dead_pid())
    start = time.monotonic()
    with ProcessLock(lock, timeout=5) as held:
        assert held.took_over and held.took_over["purpose"] == "test"
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert time.monotonic() - start < 2 and not lock.exists()


def test_lock_of_a_process_killed_with_sigkill_is_taken_over(tmp_path):
    lock = tmp_path / "x.lock"
    code = (
        "import sys, time\nfrom decaenv._process import ProcessLock\n"
        f"ProcessLock({str(lock)!r}, purpose='victim').acquire()\nprint('held', flush=True)\ntime.sleep(60)\n"
    )
    victim = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert victim.stdout.readline().strip() == "held"
    with pytest.raises(LockBusy, match=f"process {victim.pid} on host"):
        ProcessLock(lock, timeout=0.3).acquire()
    victim.kill()  # SIGKILL: no cleanup runs
    victim.wait()
    assert lock.exists() and describe_holder(lock) is None
    with ProcessLock(lock, timeout=5) as held:
        assert held.took_over["pid"] == victim.pid and held.took_over["purpose"] == "victim"


def test_live_lock_times_out_naming_its_holder(tmp_path):
    lock = tmp_path / "build.lock"
    _write_lock(lock, os.getpid())  # this very process: alive
    start = time.monotonic()
    with pytest.raises(LockBusy) as info:
        ProcessLock(lock, timeout=0.5).acquire()
    assert 0.5 <= time.monotonic() - start < 5
    assert f"process {os.getpid()} on host {socket.gethostname()}" in info.value.holder
    assert lock.exists()  # a live owner's lock is never removed


def test_reused_pid_counts_as_dead(tmp_path):
    lock = tmp_path / "build.lock"
    _write_lock(lock, os.getpid(), started=time.time() - 10 * 365 * 86400)  # lock older than this process
    if process_start_time(os.getpid()) is None:
        pytest.skip("this platform does not tell when a process started (no /proc): pid reuse is undetectable")
    assert describe_holder(lock) is None, "a lock written before its pid's process started must count as stale"
    with ProcessLock(lock, timeout=1):
        pass


@pytest.mark.parametrize("content", ["", "[1, 2]", '{"pid": "12", "started": 0}', '{"pid": 12, "started": "x"}'])
def test_garbled_lock_is_taken_over_only_once_old(tmp_path, content):
    lock = tmp_path / "build.lock"
    lock.write_text(content)
    with pytest.raises(LockBusy, match="an unknown process"):
        ProcessLock(lock, timeout=0.3).acquire()  # could be a lock being written right now
    os.utime(lock, (time.time() - 60, time.time() - 60))
    with ProcessLock(lock, timeout=1):
        pass


def test_lock_from_another_host_is_respected_until_its_lease_expires(tmp_path):
    lock = tmp_path / "build.lock"
    _write_lock(lock, 1, host="another-machine", age=60)
    with pytest.raises(LockBusy, match="on host another-machine"):
        ProcessLock(lock, timeout=0.3).acquire()
    _write_lock(lock, 1, host="another-machine", age=_process.LEASE_S + 10)
    with ProcessLock(lock, timeout=1):
        pass


def test_heartbeat_keeps_a_held_lock_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(_process, "HEARTBEAT_S", 0.05)
    lock = tmp_path / "x.lock"
    with ProcessLock(lock, timeout=1):
        old = time.time() - 100
        os.utime(lock, (old, old))
        time.sleep(0.3)
        assert time.time() - lock.stat().st_mtime < 5


def test_heartbeat_never_refreshes_someone_elses_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(_process, "HEARTBEAT_S", 0.05)
    lock = tmp_path / "x.lock"
    with ProcessLock(lock, timeout=1):
        _write_lock(lock, _dead_pid(), age=100)  # replaced behind our back
        time.sleep(0.3)
        assert time.time() - lock.stat().st_mtime > 50


def test_release_never_removes_someone_elses_lock(tmp_path):
    lock = tmp_path / "build.lock"
    held = ProcessLock(lock, timeout=1).acquire()
    _write_lock(lock, _dead_pid())  # replaced behind our back
    held.release()
    assert lock.exists()


def test_waiters_in_threads_are_told_whom_they_wait_for(tmp_path):
    lock = tmp_path / "x.lock"
    messages = []

    def other():
        try:
            with ProcessLock(lock, timeout=0.5, on_wait=messages.append):
                pass
        except LockBusy:
            messages.append("timed out")

    with ProcessLock(lock, purpose="fetching x"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert messages[0].startswith(f"waiting for process {os.getpid()} on host ") and "(fetching x)" in messages[0]
    assert messages[-1] == "timed out"


@pytest.mark.skipif(os.name == "nt", reason="process groups: POSIX")
def test_kill_tree_kills_grandchildren(tmp_path):
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **new_process_group())
    grandchild = int(proc.stdout.readline())
    kill_tree(proc)
    assert proc.returncode is not None
    deadline = time.monotonic() + 5
    while _process.pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)  # an orphan is reaped by init shortly after it dies
    assert not _process.pid_alive(grandchild)

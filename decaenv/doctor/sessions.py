"""Parent side of the probe worker: start a process for a group of sections, read its events, enforce budgets.

A section that exceeds its budget becomes `timeout`; a process that dies mid-section (segfault, `os._exit`)
makes that section `lost`. In both cases the remaining sections restart in a fresh process, so one bad
probe never hides the others. Every process is started in its own process group and killed as a group.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from decaenv._process import kill_tree, new_process_group
from decaenv.doctor.worker import MARKER, bootstrap_code

STDERR_TAIL = 4000


@dataclass
class SectionOutcome:
    """What became of one section.

    Attributes:
        state: "ok" | "error" (the section raised) | "timeout" | "lost" (the process died).
        data: the section's answer when ok. error: {"type","message","traceback"} when error.
        elapsed: seconds from the section's start to its answer. budget: its time budget.
        returncode / stderr_tail: of the process, for "lost" and "timeout".
    """

    state: str
    data: Dict[str, Any] = field(default_factory=dict)
    error: Dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    budget: float = 0.0
    returncode: Optional[int] = None
    stderr_tail: str = ""


def package_root() -> str:
    """The folder holding the `decaenv` package (so the worker can import it from any interpreter)."""
    return str(Path(__file__).resolve().parents[2])


class WorkerSession:
    """Runs `sections` (in order) in worker processes with per-section budgets.

    Args:
        python: interpreter to probe. sections: names, in run order. budgets: seconds per section.
        common: arguments every section receives (paths, flags). env: the child's environment.
    """

    def __init__(self, python: str, sections: Sequence[str], budgets: Mapping[str, float],
                 common: Mapping[str, Any], env: Mapping[str, str]):
        self.python = python
        self.budgets = dict(budgets)
        self.common = dict(common)
        self.env = dict(env)
        self._pending: List[str] = list(sections)
        self._outcomes: Dict[str, SectionOutcome] = {}
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._drive, name="decaenv-probe", daemon=True)
        self._proc: Optional[subprocess.Popen] = None
        self._closed = False

    @property
    def sections(self) -> List[str]:
        return list(self._pending) + list(self._outcomes)

    def start(self) -> "WorkerSession":
        self._thread.start()
        return self

    def outcome(self, name: str) -> SectionOutcome:
        """Block until `name` is answered (or timed out / lost)."""
        with self._cond:
            while name not in self._outcomes:
                self._cond.wait(0.5)
            return self._outcomes[name]

    def close(self) -> None:
        """Stop the worker now (its answers were all used): sections not answered yet become `lost`, and a
        worker that only has its interpreter shutdown left (torch's takes a while) is not waited for."""
        with self._cond:
            self._closed = True
            proc = self._proc
        if proc is not None:
            kill_tree(proc)
            try:
                proc.wait(timeout=5)  # reap it now: no orphan outlives the doctor
            except subprocess.TimeoutExpired:
                pass

    def _finish(self, name: str, outcome: SectionOutcome) -> None:
        with self._cond:
            self._outcomes[name] = outcome
            if name in self._pending:
                self._pending.remove(name)
            self._cond.notify_all()

    def _drive(self) -> None:
        try:
            while self._pending and not self._closed:
                self._run_process(list(self._pending))
            for name in list(self._pending):  # closed before they ran
                self._finish(name, SectionOutcome("lost", stderr_tail="the doctor finished without this probe"))
        except BaseException as exc:  # noqa: BLE001 - never leave a waiter hanging
            for name in list(self._pending):
                self._finish(name, SectionOutcome("error", error={"type": type(exc).__name__,
                                                                  "message": str(exc), "traceback": ""}))

    def _spawn(self, names: List[str]) -> subprocess.Popen:
        request = json.dumps({"sections": names, "common": self.common})
        env = dict(self.env, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
        return subprocess.Popen([self.python, "-c", bootstrap_code(package_root()), request],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, **new_process_group())

    def _run_process(self, names: List[str]) -> None:
        started = time.monotonic()
        try:
            proc = self._spawn(names)
            with self._cond:
                self._proc = proc
                if self._closed:
                    kill_tree(proc)
        except OSError as exc:
            for name in names:
                self._finish(name, SectionOutcome("lost", error={"type": type(exc).__name__, "message": str(exc)},
                                                  stderr_tail=f"cannot start {self.python}: {exc}"))
            return
        events: List[Dict[str, Any]] = []
        stderr: List[str] = []
        lock = threading.Condition()
        readers = [threading.Thread(target=_read_events, args=(proc.stdout, events, lock), daemon=True),
                   threading.Thread(target=_read_tail, args=(proc.stderr, stderr), daemon=True)]
        for reader in readers:
            reader.start()
        current, current_start = names[0], started
        try:
            while True:
                with lock:
                    while events:
                        current, current_start = self._handle(events.pop(0), current, current_start)
                    if proc.poll() is not None and not readers[0].is_alive():
                        break
                    remaining = current_start + self.budgets.get(current, 60.0) - time.monotonic()
                    if remaining <= 0 and current not in self._outcomes:
                        kill_tree(proc)
                        self._finish(current, SectionOutcome(
                            "timeout", elapsed=time.monotonic() - current_start,
                            budget=self.budgets.get(current, 60.0), stderr_tail=_tail(stderr)))
                        break
                    lock.wait(min(max(remaining, 0.01), 0.25))
        finally:
            kill_tree(proc)
            proc.wait()
            for reader in readers:
                reader.join(timeout=2)
        if current in self._pending:
            self._finish(current, SectionOutcome("lost", elapsed=time.monotonic() - current_start,
                                                 returncode=proc.returncode, stderr_tail=_tail(stderr)))

    def _handle(self, event: Dict[str, Any], current: str, current_start: float):
        name = event.get("section", "")
        if event.get("event") == "start":
            return name, time.monotonic()
        if event.get("event") == "done" and name in self._pending:
            elapsed = time.monotonic() - current_start
            if event.get("ok"):
                self._finish(name, SectionOutcome("ok", data=event.get("data") or {}, elapsed=elapsed))
            else:
                self._finish(name, SectionOutcome("error", error=event.get("error") or {}, elapsed=elapsed))
        return current, current_start


def _read_events(stream, events: List[Dict[str, Any]], lock: threading.Condition) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        if not line.startswith(MARKER):
            continue
        try:
            event = json.loads(line[len(MARKER):])
        except ValueError:
            continue
        with lock:
            events.append(event)
            lock.notify_all()
    with lock:
        lock.notify_all()


def _read_tail(stream, sink: List[str]) -> None:
    for raw in iter(stream.readline, b""):
        sink.append(raw.decode("utf-8", "replace"))
        while sum(len(s) for s in sink) > 4 * STDERR_TAIL and len(sink) > 1:
            sink.pop(0)


def _tail(lines: List[str]) -> str:
    return "".join(lines)[-STDERR_TAIL:]


def run_command(argv: Sequence[str], timeout: float, env: Optional[Mapping[str, str]] = None,
                cwd: Optional[str] = None) -> "CommandOutcome":
    """Run a tool with a budget; its whole process group is killed when the budget runs out."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=None if env is None else dict(env), cwd=cwd,
                                **new_process_group())
    except OSError as exc:
        return CommandOutcome(tuple(argv), None, "", "", time.monotonic() - start, error=str(exc))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        out, err = _drain(proc)
        return CommandOutcome(tuple(argv), None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                              time.monotonic() - start, timed_out=True)
    finally:
        kill_tree(proc)
    return CommandOutcome(tuple(argv), proc.returncode, out.decode("utf-8", "replace"),
                          err.decode("utf-8", "replace"), time.monotonic() - start)


def _drain(proc: subprocess.Popen):
    try:
        return proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):
        return b"", b""


@dataclass(frozen=True)
class CommandOutcome:
    """Result of `run_command`: returncode None when the tool could not start (`error`) or timed out."""

    argv: tuple
    returncode: Optional[int]
    stdout: str
    stderr: str
    elapsed: float
    timed_out: bool = False
    error: Optional[str] = None

    @property
    def output(self) -> str:
        """stdout and stderr together (tools print versions to either)."""
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()


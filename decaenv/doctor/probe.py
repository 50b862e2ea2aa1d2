"""The probe façade: everything a check may ask of the machine goes through a `Probe`.

Checks never call `subprocess`, `shutil.which` or `os.environ` themselves; they ask the `Probe` in their
`Context`. `SystemProbe` answers from the real machine (tools with a time budget, heavy imports in the probe
worker); tests hand in `decaenv.doctor.testing.FakeProbe` with canned answers.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import sys
import threading
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from decaenv.doctor.sessions import CommandOutcome, SectionOutcome, WorkerSession, run_command
from decaenv.doctor.worker import SECTION_ORDER, spec_of


class ProbeTimeout(Exception):
    """A tool or probe section did not answer within its budget (the check becomes `timeout`)."""

    def __init__(self, what: str, budget: float, details: str = ""):
        super().__init__(f"{what} did not answer within {budget:g} s")
        self.what, self.budget, self.details = what, budget, details


class ProbeSkipped(Exception):
    """A tool or section is not run because a tool it needs already timed out (the check becomes `skip`)."""


#: Probe sections that run these tools: once one of them hangs, the section is cancelled and skipped.
SECTION_TOOLS = {"build": ("nvcc", "gcc", "g++", "c++", "cc", "clang", "clang++", "ninja", "cl")}


class ProbeError(Exception):
    """A probe section raised inside the worker (a decaenv bug: the check becomes `crash`)."""

    def __init__(self, section: str, error: Mapping[str, Any]):
        super().__init__(f"probe {section!r} raised {error.get('type', 'an error')}: {error.get('message', '')}")
        self.section, self.error = section, dict(error)


class ProbeLost(Exception):
    """The probe process died while running a section (segfault, abort): the environment is broken there."""

    def __init__(self, section: str, returncode: Optional[int], stderr_tail: str):
        how = _describe_exit(returncode)
        super().__init__(f"the probe process died ({how}) while running {section!r}")
        self.section, self.returncode, self.stderr_tail = section, returncode, stderr_tail


def _describe_exit(code: Optional[int]) -> str:
    if code is None:
        return "could not start"
    if code < 0:
        try:
            import signal

            return f"killed by {signal.Signals(-code).name}"
        except (ValueError, AttributeError):
            return f"signal {-code}"
    return f"exit status {code}"


@dataclass(frozen=True)
class Budgets:
    """Time budgets in seconds: `command` for each external tool (nvcc, gcc, ...), `import` for probe
    sections that import libraries, `data` for loading the user's files, `build` for the build probe."""

    command: float = 10.0
    import_: float = 90.0
    data: float = 180.0
    build: float = 420.0

    def for_section(self, name: str) -> float:
        kind = spec_of(name).budget
        return {"import": self.import_, "data": self.data, "build": self.build}[kind]

    @classmethod
    def from_env(cls, value: Optional[str], command: Optional[float] = None) -> "Budgets":
        """Parse `DECAENV_DOCTOR_TIMEOUTS` ("command=5,import=60,data=120,build=600"); bad items are ignored."""
        fields: Dict[str, float] = {}
        for item in (value or "").split(","):
            key, _, raw = item.partition("=")
            key = {"import": "import_"}.get(key.strip(), key.strip())
            try:
                if key in ("command", "import_", "data", "build") and float(raw) > 0:
                    fields[key] = float(raw)
            except ValueError:
                continue
        if command is not None:
            fields["command"] = command
        return cls(**fields)


@dataclass(frozen=True)
class PlatformInfo:
    """The host, as checks see it (fakeable)."""

    system: str          # platform.system(): "Linux", "Windows", "Darwin"
    release: str
    machine: str
    python_version: Tuple[int, int, int]
    implementation: str
    executable: str
    wsl: bool = False
    distro: str = ""       # Linux: PRETTY_NAME of /etc/os-release
    distro_like: str = ""  # Linux: ID and ID_LIKE ("debian", "ubuntu debian", "fedora rhel")
    bits: int = 64

    @property
    def python(self) -> str:
        return ".".join(str(p) for p in self.python_version)


class _Memo:
    """Thread-safe memo: one computation per key, concurrent askers wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: Dict[Any, threading.Event] = {}
        self._values: Dict[Any, Tuple[bool, Any]] = {}

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            event = self._events.get(key)
            owner = event is None
            if owner:
                event = self._events[key] = threading.Event()
        if owner:
            try:
                self._values[key] = (True, compute())
            except BaseException as exc:  # noqa: BLE001 - re-raised to every asker
                self._values[key] = (False, exc)
            event.set()
        else:
            event.wait()
        ok, value = self._values[key]
        if not ok:
            raise value
        return value

    def has(self, key: Any) -> bool:
        """True once `key` was asked for (computed or being computed)."""
        with self._lock:
            return key in self._events


class SystemProbe:
    """The real machine.

    Args:
        python: interpreter whose environment is probed (default: the doctor's own).
        environ: environment variables (default: a copy of `os.environ`).
        budgets: time budgets. common: arguments handed to every probe section (e.g. the data dir).
    """

    def __init__(self, python: Optional[str] = None, environ: Optional[Mapping[str, str]] = None,
                 budgets: Budgets = Budgets(), common: Optional[Mapping[str, Any]] = None):
        self.python = python or sys.executable
        self.environ: Dict[str, str] = dict(os.environ if environ is None else environ)
        self.budgets = budgets
        self.common: Dict[str, Any] = dict(common or {})
        self._memo = _Memo()
        self._sessions: Dict[str, WorkerSession] = {}
        self._sessions_lock = threading.Lock()
        self._hung: Dict[str, str] = {}       # tool name -> what timed out
        self._cancelled: Dict[str, str] = {}  # section -> why it is skipped

    # -- the host ---------------------------------------------------------------------------------------
    def platform(self) -> PlatformInfo:
        release = platform.release()
        distro, like = _os_release() if platform.system() == "Linux" else ("", "")
        return PlatformInfo(platform.system(), release, platform.machine(), tuple(sys.version_info[:3]),
                            platform.python_implementation(), sys.executable,
                            wsl="microsoft" in release.lower(), distro=distro, distro_like=like,
                            bits=64 if sys.maxsize > 2**32 else 32)

    def package_file(self, package: str, relative: str) -> Optional[str]:
        """A file inside an installed top-level package, located without importing it (None if absent)."""
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            candidate = os.path.join(folder, relative)
            if os.path.exists(candidate):
                return candidate
        return None

    def python_include(self) -> Optional[str]:
        """The probed interpreter's C header folder (where Python.h should be)."""
        if os.path.realpath(self.python) == os.path.realpath(sys.executable):
            import sysconfig

            return sysconfig.get_paths().get("include")
        outcome = self.run([self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"])
        return (outcome.stdout.strip() or None) if outcome.returncode == 0 else None

    def cuda_default_roots(self) -> Tuple[str, ...]:
        """Where torch looks for a CUDA toolkit when neither CUDA_HOME/CUDA_PATH nor nvcc on PATH says."""
        if platform.system() == "Windows":
            import glob

            return tuple(glob.glob("C:/Program Files/NVIDIA GPU Computing Toolkit/CUDA/v*.*"))
        return ("/usr/local/cuda",)

    def nvidia_driver(self) -> Optional[str]:
        """The NVIDIA kernel driver version (Linux /proc), or None when no driver is loaded."""
        for path in ("/proc/driver/nvidia/version", "/sys/module/nvidia/version"):
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            match = re.search(r"(\d+\.\d+(?:\.\d+)?)", text)
            return match.group(1) if match else text.strip()[:40]
        if platform.system() == "Windows" and self.which("nvidia-smi"):
            return "present"
        return None

    def env(self, name: str) -> Optional[str]:
        return self.environ.get(name)

    def which(self, name: str) -> Optional[str]:
        """`shutil.which` on this probe's PATH."""
        return shutil.which(name, path=self.environ.get("PATH", os.defpath))

    # -- tools ------------------------------------------------------------------------------------------
    def run(self, argv: Sequence[str], timeout: Optional[float] = None) -> CommandOutcome:
        """Run a tool (memoized per run). Raises `ProbeTimeout` when it exceeds its budget."""
        budget = self.budgets.command if timeout is None else timeout
        tool = _tool_name(argv[0]) if argv else ""
        key = ("run", tuple(argv))
        if tool in self._hung and not self._memo.has(key):
            raise ProbeSkipped(f"not run: {self._hung[tool]}")
        outcome = self._memo.get(key, lambda: run_command(argv, budget, env=self.environ))
        if outcome.timed_out:
            self._tool_hung(tool, f"`{' '.join(argv)}` did not answer within {budget:g} s")
            raise ProbeTimeout(f"`{' '.join(argv)}`", budget, outcome.output[-500:])
        return outcome

    def _check_tools(self, tools: Sequence[str]) -> None:
        """Ask each of `tools` on PATH for its version, concurrently (one command budget in all): a hung one
        cancels the sections that need it before they wait out their own, much longer, budget."""
        def ask(path: str) -> None:
            try:
                self.run([path, "--version"])
            except (ProbeTimeout, ProbeSkipped):
                pass

        paths = [p for p in (self.which(t) for t in tools) if p]
        threads = [threading.Thread(target=ask, args=(p,), daemon=True) for p in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _tool_hung(self, tool: str, what: str) -> None:
        """Remember a hung tool; cancel the sections that need it (they would hang for their whole budget)."""
        with self._sessions_lock:
            self._hung.setdefault(tool, what)
            doomed = [name for name, tools in SECTION_TOOLS.items() if tool in tools and name not in self._cancelled]
            for name in doomed:
                self._cancelled[name] = f"{what}, and the {name} probe needs it"
            sessions = [self._sessions[n] for n in doomed if n in self._sessions]
        for session in sessions:
            session.close()

    # -- probe sections -----------------------------------------------------------------------------------
    def plan(self, sections: Iterable[str]) -> None:
        """Start the worker processes for these sections now, concurrently (one process per group)."""
        requested = set(sections)
        wanted = [s for s in SECTION_ORDER if s in requested] + sorted(requested - set(SECTION_ORDER))
        groups: Dict[str, list] = {}
        for name in wanted:
            groups.setdefault(spec_of(name).group, []).append(name)
        with self._sessions_lock:
            for names in groups.values():
                fresh = [n for n in names if n not in self._sessions and n not in self._cancelled]
                if fresh:
                    self._start(fresh)

    def _start(self, names: Sequence[str]) -> WorkerSession:
        session = WorkerSession(self.python, names, {n: self.budgets.for_section(n) for n in names},
                                self.common, self.environ).start()
        for name in names:
            self._sessions[name] = session
        return session

    def close(self) -> None:
        """Stop every worker process still running (called when the report is complete)."""
        with self._sessions_lock:
            sessions = {id(s): s for s in self._sessions.values()}.values()
        for session in sessions:
            session.close()

    def section(self, name: str) -> Dict[str, Any]:
        """The answer of a probe section (started on demand when not planned).

        Raises:
            ProbeTimeout: it did not answer within its budget. ProbeLost: its process died.
            ProbeError: it raised (a decaenv bug).
        """
        if name in SECTION_TOOLS:
            self._check_tools(SECTION_TOOLS[name])
        with self._sessions_lock:
            if name in self._cancelled:
                raise ProbeSkipped(f"not run: {self._cancelled[name]}")
            session = self._sessions.get(name) or self._start([name])
        outcome = session.outcome(name)
        if name in self._cancelled:
            raise ProbeSkipped(f"not run: {self._cancelled[name]}")
        return outcome_to_data(name, outcome)


def _tool_name(path: str) -> str:
    """"/usr/local/cuda/bin/nvcc" -> "nvcc" (".exe" dropped)."""
    name = os.path.basename(path)
    return name[:-4] if name.lower().endswith(".exe") else name


def _os_release() -> Tuple[str, str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        fields = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, re.M))
        like = " ".join(v for v in (fields.get("ID", ""), fields.get("ID_LIKE", "")) if v)
        return fields.get("PRETTY_NAME", ""), like
    return "", ""


def outcome_to_data(name: str, outcome: SectionOutcome) -> Dict[str, Any]:
    """Turn a section outcome into its data, or raise the matching probe exception."""
    if outcome.state == "ok":
        return outcome.data
    if outcome.state == "timeout":
        raise ProbeTimeout(f"probe {name!r}", outcome.budget, outcome.stderr_tail[-500:])
    if outcome.state == "lost":
        raise ProbeLost(name, outcome.returncode, outcome.stderr_tail)
    raise ProbeError(name, outcome.error)

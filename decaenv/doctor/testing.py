"""Test doubles for the doctor: a `FakeProbe` with canned answers and a `make_context` helper.

Unit tests of checks build a `FakeProbe` describing the machine they want (tool outputs, probe-section
answers, environment, platform) and call the check function directly; nothing touches the real machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from decaenv.doctor.context import Context
from decaenv.doctor.probe import Budgets, PlatformInfo, ProbeError, ProbeLost, ProbeTimeout
from decaenv.doctor.sessions import CommandOutcome
from decaenv.paths import DataDir

LINUX = PlatformInfo("Linux", "6.1.0", "x86_64", (3, 11, 7), "CPython", "/venv/bin/python")


class Timeout:
    """Marker: this section/command times out."""


class Lost:
    """Marker: the probe process dies in this section."""

    def __init__(self, returncode: int = -11, stderr: str = "Segmentation fault"):
        self.returncode, self.stderr = returncode, stderr


class Raises:
    """Marker: this section raises inside the worker (a decaenv bug)."""

    def __init__(self, type_: str = "RuntimeError", message: str = "boom"):
        self.error = {"type": type_, "message": message, "traceback": ""}


Answer = Union[Dict[str, Any], Timeout, Lost, Raises]


class FakeProbe:
    """A machine described by data.

    Args:
        sections: section name -> answer dict (or `Timeout()`, `Lost()`, `Raises()`).
        commands: argv tuple -> (returncode, output) or `Timeout()`; missing -> could not start.
        tools: name -> path for `which`.
        environ: environment variables. platform: a `PlatformInfo`.
    """

    def __init__(
        self,
        sections: Optional[Mapping[str, Answer]] = None,
        commands: Optional[Mapping[Tuple[str, ...], Any]] = None,
        tools: Optional[Mapping[str, str]] = None,
        environ: Optional[Mapping[str, str]] = None,
        platform: PlatformInfo = LINUX,
        python: str = "/venv/bin/python",
        files: Optional[Mapping[Tuple[str, str], str]] = None,
        include: Optional[str] = None,
        driver: Optional[str] = None,
        cuda_roots: Tuple[str, ...] = (),
    ):
        self.sections = dict(sections or {})
        self.commands = dict(commands or {})
        self.tools = dict(tools or {})
        self.environ = dict(environ or {})
        self._platform = platform
        self.python = python
        self.budgets = Budgets()
        self.files = dict(files or {})
        self.include = include
        self.driver = driver
        self.cuda_roots = tuple(cuda_roots)
        self.asked: list = []

    def package_file(self, package: str, relative: str) -> Optional[str]:
        return self.files.get((package, relative))

    def python_include(self) -> Optional[str]:
        return self.include

    def nvidia_driver(self) -> Optional[str]:
        return self.driver

    def cuda_default_roots(self) -> Tuple[str, ...]:
        return self.cuda_roots

    def platform(self) -> PlatformInfo:
        return self._platform

    def env(self, name: str) -> Optional[str]:
        return self.environ.get(name)

    def which(self, name: str) -> Optional[str]:
        return self.tools.get(name)

    def run(self, argv: Sequence[str], timeout: Optional[float] = None) -> CommandOutcome:
        key = tuple(argv)
        self.asked.append(key)
        answer = self.commands.get(key)
        if isinstance(answer, Timeout):
            raise ProbeTimeout(f"`{' '.join(argv)}`", timeout or self.budgets.command)
        if answer is None:
            return CommandOutcome(key, None, "", "", 0.0, error=f"No such file or directory: {argv[0]!r}")
        code, output = answer
        return CommandOutcome(key, code, output, "", 0.0)

    def plan(self, sections) -> None:
        pass

    def close(self) -> None:
        pass

    def section(self, name: str) -> Dict[str, Any]:
        self.asked.append(name)
        answer = self.sections.get(name)
        if answer is None:
            raise AssertionError(f"test did not describe probe section {name!r}")
        if isinstance(answer, Timeout):
            raise ProbeTimeout(f"probe {name!r}", self.budgets.for_section(name))
        if isinstance(answer, Lost):
            raise ProbeLost(name, answer.returncode, answer.stderr)
        if isinstance(answer, Raises):
            raise ProbeError(name, answer.error)
        return dict(answer)


def make_context(probe: Optional[FakeProbe] = None, data_dir: Union[None, Path, DataDir] = None, **kw: Any) -> Context:
    """A `Context` around a fake probe (data dir defaults to a path that does not exist; a bare path counts
    as the default location)."""
    if not isinstance(data_dir, DataDir):
        data_dir = DataDir(Path(data_dir or "/nonexistent/decaenv-data"), "default")
    return Context(probe=probe or FakeProbe(), data_dir=data_dir, **kw)

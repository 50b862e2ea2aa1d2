"""A pytest plugin that measures what the suite writes: bytes passed to write() by the test process and the
children it reaped (Linux `/proc/self/io` `wchar`), per test and in total, printed at the end of the run.

What the tests write is held to `DECAENV_TEST_WRITE_BUDGET_GB` (default 2, issue 13's target): a full run over it
fails (so a fixture that starts rebuilding 214 MB checkpoints per test is caught). Building what is kept between
runs (the synthetic data dirs and FAN weights of `_support.synthetic_cache`, the test venvs) happens once per
machine, inside `cache_build()`: it is counted and printed apart, not charged to the budget. Partial runs (`-k`,
`-m`, single files) print the figures without enforcing them unless the variable is set. Under pytest-xdist
(`make test-fast` runs `-n 2`) every worker measures itself and hands its figures to the controller.

What is left is mostly full-size files a test is about: the folder import and the Drive download of the
checkpoint, the installed wheel's `selftest`, real reconstructions; what checks loading, import or transfer
mechanics uses the 7 MB mini FLAME (`_support.assets.mini_flame_arrays`) or files of a few MB. Figures:
docs/BENCHMARKS.md ("Test suite").
"""

from __future__ import annotations

import contextlib
import os
from typing import Dict, Iterator, List, Tuple

import pytest

_PER_TEST: List[Tuple[float, str]] = []
_START: Dict[str, int] = {}
_WORKERS: List[int] = []  # bytes written by each finished xdist worker
_CACHE_BUILDS: List[int] = []  # bytes written building what is kept between runs (this process and its workers)


def io_counters() -> Dict[str, int]:
    """This process's I/O counters (reaped children included), or {} where /proc/self/io is unavailable."""
    try:
        with open("/proc/self/io") as fh:
            return {k: int(v) for k, v in (line.split(": ") for line in fh.read().splitlines())}
    except OSError:
        return {}


def pytest_sessionstart(session):
    _START.update(io_counters())


@contextlib.contextmanager
def cache_build() -> Iterator[None]:
    """Count what the block writes (children included) as a one-time build of something kept between runs."""
    before = io_counters().get("wchar", 0)
    try:
        yield
    finally:
        _CACHE_BUILDS.append(io_counters().get("wchar", 0) - before)


def pytest_sessionfinish(session, exitstatus):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its figures travel to the controller
        workeroutput["io_written"] = written_bytes()
        workeroutput["io_per_test"] = list(_PER_TEST)
        workeroutput["io_cache_builds"] = sum(_CACHE_BUILDS)
        return
    _enforce_budget(session)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown (and never called) without pytest-xdist
def pytest_testnodedown(node, error):
    """Controller side of xdist: add a finished worker's writes to this run's figures."""
    output = getattr(node, "workeroutput", {})
    _WORKERS.append(int(output.get("io_written", 0)))
    _CACHE_BUILDS.append(int(output.get("io_cache_builds", 0)))
    _PER_TEST.extend((float(size), nodeid) for size, nodeid in output.get("io_per_test", []))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = io_counters().get("wchar", 0)
    yield
    _PER_TEST.append((io_counters().get("wchar", 0) - before, item.nodeid))


def written_bytes() -> int:
    """Bytes written by this process and its reaped children since the session started. xdist workers are
    children too: once reaped they are in this figure; until then their own reports stand for them."""
    return max(io_counters().get("wchar", 0) - _START.get("wchar", 0), sum(_WORKERS))


def tests_bytes() -> int:
    """What the tests wrote: the run's bytes less the one-time builds of what is kept between runs."""
    return written_bytes() - sum(_CACHE_BUILDS)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _START:
        return
    builds = sum(_CACHE_BUILDS)
    top = sorted(_PER_TEST, reverse=True)[:8]
    terminalreporter.write_sep(
        "-",
        f"bytes written by the tests: {tests_bytes() / 1e9:.2f} GB"
        f" (+ {builds / 1e9:.2f} GB building what is kept between runs)",
    )
    for size, nodeid in top:
        if size > 50e6:
            terminalreporter.write_line(f"{size / 1e6:8.0f} MB  {nodeid}")
    report = os.environ.get("DECAENV_TEST_IO_REPORT")
    if report:  # every test's figure, largest first, for finding what to slim down
        with open(report, "w") as fh:
            fh.writelines(f"{size / 1e6:10.1f} MB  {nodeid}\n" for size, nodeid in sorted(_PER_TEST, reverse=True))


def _enforce_budget(session) -> None:
    budget = os.environ.get("DECAENV_TEST_WRITE_BUDGET_GB")
    full_run = not session.config.option.keyword and not session.config.option.markexpr and session.testscollected > 900
    if not _START or not (budget or full_run):
        return
    limit = float(budget or 2) * 1e9
    if tests_bytes() > limit and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(
            f"\nthe tests wrote {tests_bytes() / 1e9:.2f} GB, over their {limit / 1e9:.1f} GB budget "
            "(see the largest writers above)"
        )

"""A pytest plugin that measures what the suite writes: bytes passed to write() by the test process and the
children it reaped (Linux `/proc/self/io` `wchar`), per test and in total, printed at the end of the run.

The suite's budget is `DECAENV_TEST_WRITE_BUDGET_GB` (default 7): a full run that writes more fails the session
(so a fixture that starts rebuilding 434 MB checkpoints per test is caught). A full run wrote 5.84 GB on
2026-12-06 (8.55 GB before the suite was slimmed); issue 13's target is 2 GB, not reached yet: the largest
writers are the tests that import, download or convert the full-size checkpoint and FLAME model. Partial runs
(`-k`, single files) print the figure without enforcing it unless the variable is set.
"""

from __future__ import annotations

import os
from typing import Dict, List, Tuple

import pytest

_PER_TEST: List[Tuple[float, str]] = []
_START: Dict[str, int] = {}


def io_counters() -> Dict[str, int]:
    """This process's I/O counters (reaped children included), or {} where /proc/self/io is unavailable."""
    try:
        with open("/proc/self/io") as fh:
            return {k: int(v) for k, v in (line.split(": ") for line in fh.read().splitlines())}
    except OSError:
        return {}


def pytest_sessionstart(session):
    _START.update(io_counters())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = io_counters().get("wchar", 0)
    yield
    _PER_TEST.append((io_counters().get("wchar", 0) - before, item.nodeid))


def written_bytes() -> int:
    return io_counters().get("wchar", 0) - _START.get("wchar", 0)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _START:
        return
    total = written_bytes()
    top = sorted(_PER_TEST, reverse=True)[:8]
    terminalreporter.write_sep("-", f"bytes written by this run: {total / 1e9:.2f} GB")
    for size, nodeid in top:
        if size > 50e6:
            terminalreporter.write_line(f"{size / 1e6:8.0f} MB  {nodeid}")
    report = os.environ.get("DECAENV_TEST_IO_REPORT")
    if report:  # every test's figure, largest first, for finding what to slim down
        with open(report, "w") as fh:
            fh.writelines(f"{size / 1e6:10.1f} MB  {nodeid}\n" for size, nodeid in sorted(_PER_TEST, reverse=True))


def pytest_sessionfinish(session, exitstatus):
    budget = os.environ.get("DECAENV_TEST_WRITE_BUDGET_GB")
    full_run = not session.config.option.keyword and not session.config.option.markexpr and session.testscollected > 900
    if not _START or not (budget or full_run):
        return
    limit = float(budget or 7) * 1e9
    if written_bytes() > limit and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(
            f"\nthe suite wrote {written_bytes() / 1e9:.2f} GB, over its {limit / 1e9:.1f} GB budget "
            "(see the largest writers above)"
        )

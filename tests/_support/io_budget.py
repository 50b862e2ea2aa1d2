"""A pytest plugin that measures what the suite writes: bytes passed to write() by the test process and the
children it reaped (Linux `/proc/self/io` `wchar`), per test and in total, printed at the end of the run.

The suite's budget is `DECAENV_TEST_WRITE_BUDGET_GB` (default 3): a full run that writes more fails the session
(so a fixture that starts rebuilding 214 MB checkpoints per test is caught). Partial runs (`-k`, `-m`, single
files) print the figure without enforcing it unless the variable is set.

Measured (full run with DECAENV_TEST_ASSETS, 1168 tests): 2.49 GB with the test venvs cached, 0.34 GB of it the
two synthetic data dirs (one 214 MB checkpoint, hard-linked into both; two 53 MB FLAME pickles), which
`_support.synthetic_cache` now keeps between runs: about 2.15 GB (5.84 GB before issue 13's slimming, on 1090
tests; 13 GB before that). A run that first builds the cached test venvs writes more (the five doctor venvs:
+0.80 GB, once): set the variable for it. What is left is mostly full-size files a test is about: the folder
import and the Drive download of the checkpoint, the installed wheel's `selftest`, the Colab notebook, real
reconstructions; what checks loading, import or transfer mechanics uses the 7 MB mini FLAME
(`_support.assets.mini_flame_arrays`) or files of a few MB. Under pytest-xdist (`make test-fast`
runs `-n 2`) every worker measures itself and hands its figures to the controller, which adds them up.
"""

from __future__ import annotations

import os
from typing import Dict, List, Tuple

import pytest

_PER_TEST: List[Tuple[float, str]] = []
_START: Dict[str, int] = {}
_WORKERS: List[int] = []  # bytes written by each finished xdist worker


def io_counters() -> Dict[str, int]:
    """This process's I/O counters (reaped children included), or {} where /proc/self/io is unavailable."""
    try:
        with open("/proc/self/io") as fh:
            return {k: int(v) for k, v in (line.split(": ") for line in fh.read().splitlines())}
    except OSError:
        return {}


def pytest_sessionstart(session):
    _START.update(io_counters())


def pytest_sessionfinish(session, exitstatus):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its figures travel to the controller
        workeroutput["io_written"] = written_bytes()
        workeroutput["io_per_test"] = list(_PER_TEST)
        return
    _enforce_budget(session)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown (and never called) without pytest-xdist
def pytest_testnodedown(node, error):
    """Controller side of xdist: add a finished worker's writes to this run's figures."""
    output = getattr(node, "workeroutput", {})
    _WORKERS.append(int(output.get("io_written", 0)))
    _PER_TEST.extend((float(size), nodeid) for size, nodeid in output.get("io_per_test", []))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = io_counters().get("wchar", 0)
    yield
    _PER_TEST.append((io_counters().get("wchar", 0) - before, item.nodeid))


def written_bytes() -> int:
    """Bytes written by this process (and its reaped children) since the session started, plus its xdist workers'."""
    return io_counters().get("wchar", 0) - _START.get("wchar", 0) + sum(_WORKERS)


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


def _enforce_budget(session) -> None:
    budget = os.environ.get("DECAENV_TEST_WRITE_BUDGET_GB")
    full_run = not session.config.option.keyword and not session.config.option.markexpr and session.testscollected > 900
    if not _START or not (budget or full_run):
        return
    limit = float(budget or 3) * 1e9
    if written_bytes() > limit and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(
            f"\nthe suite wrote {written_bytes() / 1e9:.2f} GB, over its {limit / 1e9:.1f} GB budget "
            "(see the largest writers above)"
        )

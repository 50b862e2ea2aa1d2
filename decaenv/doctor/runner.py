"""Run checks: requirements first, independent checks concurrently, cached results reused, every failure
of the doctor itself turned into a row (`timeout` or `crash`) instead of an exception.

A check runs in its own (daemon) thread as soon as its requirements are done; its probes were started
before that (`Probe.plan`), so imports and tools of independent checks overlap. A check whose requirement
did not pass is `skip`. A check that raises is `crash` (a decaenv bug); a probe that exceeds its budget is
`timeout`; a check that needs a tool which already timed out is `skip` at once (so hung compilers cost one
budget, not one per check); a check thread that never returns is `timeout` after a watchdog limit. Every row is always present.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from typing import Callable, Dict, List, Optional, Sequence

from decaenv.doctor.cache import Fingerprint, ResultCache
from decaenv.doctor.context import Context
from decaenv.doctor.model import Check, CheckResult, Remediation, Report, Status
from decaenv.doctor.probe import ProbeError, ProbeLost, ProbeSkipped, ProbeTimeout
from decaenv.doctor.registry import Registry

PASSING = (Status.OK, Status.WARN)
REPORT_BUG = "This is a decaenv bug: please report it with the output of `decaenv doctor --markdown -v`."


def run_check(item: Check, ctx: Context) -> CheckResult:
    """Run one check function, converting every exception into a result."""
    start = time.perf_counter()
    try:
        result = item.func(ctx)
        if not isinstance(result, CheckResult):
            raise TypeError(f"check returned {type(result).__name__}, not a CheckResult")
    except ProbeTimeout as exc:
        result = CheckResult(Status.TIMEOUT, str(exc), tuple(exc.details.splitlines()[-10:]),
                             Remediation("Run the step by hand to see where it hangs; raise the budget with "
                                         "DECAENV_DOCTOR_TIMEOUTS=command=30,import=300,data=600,build=1200."))
    except ProbeSkipped as exc:
        result = CheckResult(Status.SKIP, str(exc), (),
                             Remediation("Fix or remove the tool that hangs (run it by hand to see), then run the "
                                         "doctor again."))
    except ProbeLost as exc:
        result = CheckResult(Status.FAIL, str(exc), tuple(exc.stderr_tail.splitlines()[-12:]),
                             Remediation("A library crashed the interpreter while being probed; the last lines above "
                                         "name it. Reinstall that package."))
    except ProbeError as exc:
        result = CheckResult(Status.CRASH, f"the check crashed: {exc}",
                             tuple(str(exc.error.get("traceback", "")).splitlines()[-15:]), Remediation(REPORT_BUG))
    except Exception as exc:  # noqa: BLE001 - a crashing check is a row, never the end of the report
        result = CheckResult(Status.CRASH, f"the check crashed: {type(exc).__name__}: {exc}",
                             tuple(traceback.format_exc().splitlines()[-15:]), Remediation(REPORT_BUG))
    if not result.fm:
        result = result.with_(fm=item.fm)
    if item.link and not result.link:
        result = result.with_(link=item.link)
    return result.with_(elapsed=time.perf_counter() - start)


def _requirement_skip(item: Check, results: Dict[str, CheckResult]) -> Optional[CheckResult]:
    for req in item.requires:
        r = results.get(req)
        if r is not None and r.status not in PASSING:
            reason = "was skipped" if r.status is Status.SKIP else f"is {r.status.value}"
            return CheckResult(Status.SKIP, f"not run: requirement `{req}` {reason}", fm=item.fm)
    return None


class Runner:
    """Runs a selection of a registry's checks against a context.

    Args:
        registry: the checks. ctx: their context. cache: a `ResultCache` (None: no caching).
        fingerprint: computes cache keys (None: no caching). watchdog: seconds after which a check thread that
        has not returned is reported as `timeout` (probes have their own, shorter budgets).
        on_result: called with (check, result) as each result arrives (progress display).
    """

    def __init__(self, registry: Registry, ctx: Context, cache: Optional[ResultCache] = None,
                 fingerprint: Optional[Fingerprint] = None, watchdog: float = 900.0,
                 on_result: Optional[Callable[[Check, CheckResult], None]] = None):
        self.registry = registry
        self.ctx = ctx
        self.cache = cache if fingerprint is not None else None
        self.fingerprint = fingerprint
        self.watchdog = watchdog
        self.on_result = on_result

    def run(self, names: Sequence[str] = ()) -> Report:
        started = time.perf_counter()
        shown, needed = self.registry.select(names)
        order = self.registry.topological([c.id for c in needed])
        results = self.ctx.results
        cached = self._cached(order)
        to_run = [c for c in order if c.id not in cached]
        self.ctx.probe.plan([s for c in to_run for s in c.probes if not (c.slow and self.ctx.no_build)])
        self._schedule(order, cached, results)
        if self.cache is not None:
            self.cache.save()
        shown_ids = {c.id for c in shown}
        return Report(checks=list(shown), results={c.id: results[c.id] for c in shown},
                      requirements={c.id: results[c.id] for c in needed if c.id not in shown_ids},
                      options={"selected": list(names), "no_build": self.ctx.no_build},
                      elapsed=time.perf_counter() - started)

    def _key(self, item: Check) -> Optional[str]:
        if self.cache is None or item.cache is None:
            return None
        return self.fingerprint.key(item.cache)

    def _cached(self, order: List[Check]) -> Dict[str, CheckResult]:
        hits: Dict[str, CheckResult] = {}
        for item in order:
            key = self._key(item)
            hit = self.cache.get(item, key) if key else None
            if hit is not None:
                hits[item.id] = hit
        return hits

    def _finish(self, item: Check, result: CheckResult, results: Dict[str, CheckResult], store: bool) -> None:
        results[item.id] = result
        if store and self.cache is not None:
            key = self._key(item)
            if key:
                self.cache.put(item, key, result)
        if self.on_result is not None:
            self.on_result(item, result)

    def _schedule(self, order: List[Check], cached: Dict[str, CheckResult], results: Dict[str, CheckResult]) -> None:
        done: "queue.Queue" = queue.Queue()
        waiting = list(order)
        running: Dict[str, float] = {}
        while waiting or running:
            for item in list(waiting):
                pending = {c.id for c in waiting} | set(running)
                if any(req in pending for req in item.requires):
                    continue
                waiting.remove(item)
                skipped = _requirement_skip(item, results)
                if skipped is not None:
                    self._finish(item, skipped, results, store=False)
                elif item.id in cached:
                    self._finish(item, cached[item.id], results, store=False)
                elif item.slow and self.ctx.no_build:
                    self._finish(item, CheckResult(Status.SKIP, "not run (--no-build)", fm=item.fm), results, False)
                else:
                    running[item.id] = time.monotonic()
                    threading.Thread(target=lambda c=item: done.put((c, run_check(c, self.ctx))),
                                     name=f"doctor-{item.id}", daemon=True).start()
            if not running:
                continue
            try:
                item, result = done.get(timeout=0.5)
            except queue.Empty:
                self._expire(running, results)
                continue
            if item.id in running:
                del running[item.id]
                self._finish(item, result, results, store=True)

    def _expire(self, running: Dict[str, float], results: Dict[str, CheckResult]) -> None:
        now = time.monotonic()
        for check_id, start in list(running.items()):
            if now - start > self.watchdog:
                item = self.registry.get(check_id)
                del running[check_id]
                self._finish(item, CheckResult(Status.TIMEOUT, f"the check did not finish within {self.watchdog:g} s",
                                               fm=item.fm), results, store=False)

"""The runner: every status, crash isolation, requirement skips, timeouts, concurrency, caching, verdict, exit codes."""

import time

from decaenv.doctor.cache import Fingerprint, ResultCache
from decaenv.doctor.model import Check, CheckResult, Status, fail, ok, skip, warn
from decaenv.doctor.probe import ProbeLost, ProbeTimeout
from decaenv.doctor.registry import Registry
from decaenv.doctor.runner import Runner
from decaenv.doctor.testing import make_context
from decaenv.doctor.verdict import compute_verdict, exit_code


def _registry(*specs):
    reg = Registry()
    for cid, func, kw in specs:
        reg.add(Check(cid, cid.replace("-", " ").title(), kw.pop("category", "python"), func, **kw))
    return reg


def _raise(exc):
    def func(ctx):
        raise exc

    return func


def test_each_status_and_crash_row_keep_every_other_row():
    reg = _registry(
        ("fine", lambda ctx: ok("all good"), {}),
        ("meh", lambda ctx: warn("hmm"), {}),
        ("broken", lambda ctx: fail("no"), {}),
        ("buggy", _raise(ZeroDivisionError("division by zero")), {}),
        ("slowpoke", _raise(ProbeTimeout("`nvcc --version`", 2.0)), {}),
        ("segv", _raise(ProbeLost("torch", -11, "Segmentation fault")), {}),
        ("na", lambda ctx: skip("does not apply"), {}),
    )
    report = Runner(reg, make_context()).run()
    status = {cid: r.status for cid, r in report.results.items()}
    assert status == {
        "fine": Status.OK,
        "meh": Status.WARN,
        "broken": Status.FAIL,
        "buggy": Status.CRASH,
        "slowpoke": Status.TIMEOUT,
        "segv": Status.FAIL,
        "na": Status.SKIP,
    }
    crash = report.results["buggy"]
    assert "ZeroDivisionError" in crash.summary and any("division by zero" in d for d in crash.details)
    assert "decaenv bug" in crash.remediation.text
    assert "did not answer within 2 s" in report.results["slowpoke"].summary
    assert "SIGSEGV" in report.results["segv"].summary
    verdict = compute_verdict(report)
    assert not verdict.ready and exit_code(verdict) == 2
    assert verdict.line.startswith("not ready: 4 problems (broken, buggy, slowpoke, segv)")


def test_a_check_returning_garbage_is_a_crash():
    report = Runner(_registry(("odd", lambda ctx: "not a result", {})), make_context()).run()
    assert report.results["odd"].status is Status.CRASH


def test_failed_requirement_skips_dependents_transitively():
    reg = _registry(
        ("root", lambda ctx: fail("torch missing"), {}),
        ("child", lambda ctx: ok("never"), {"requires": ("root",)}),
        ("grandchild", lambda ctx: ok("never"), {"requires": ("child",)}),
        ("sibling", lambda ctx: ok("independent"), {}),
    )
    report = Runner(reg, make_context()).run()
    assert report.results["child"].status is Status.SKIP
    assert "requirement `root` is fail" in report.results["child"].summary
    assert "requirement `child` was skipped" in report.results["grandchild"].summary
    assert report.results["sibling"].status is Status.OK
    assert compute_verdict(report).problems == ["root"]


def test_warn_requirement_still_runs_dependents_and_results_are_visible():
    seen = {}

    def child(ctx):
        seen["req"] = ctx.result("root").summary
        return ok("ran")

    reg = _registry(("root", lambda ctx: warn("degraded"), {}), ("child", child, {"requires": ("root",)}))
    report = Runner(reg, make_context()).run()
    assert report.results["child"].status is Status.OK and seen["req"] == "degraded"


def test_independent_checks_run_concurrently():
    def sleepy(ctx):
        time.sleep(0.6)
        return ok("slept")

    reg = _registry(*[(f"s{i}", sleepy, {}) for i in range(4)])
    start = time.perf_counter()
    Runner(reg, make_context()).run()
    assert time.perf_counter() - start < 1.5  # 4 x 0.6 s sequentially would be 2.4 s


def test_watchdog_turns_a_hung_check_into_timeout():
    reg = _registry(("hang", lambda ctx: time.sleep(30) or ok("x"), {}), ("quick", lambda ctx: ok("x"), {}))
    start = time.perf_counter()
    report = Runner(reg, make_context(), watchdog=1.0).run()
    assert time.perf_counter() - start < 5
    assert report.results["hang"].status is Status.TIMEOUT
    assert report.results["quick"].status is Status.OK


def test_selection_shows_only_requested_but_runs_requirements():
    calls = []

    def track(name):
        def func(ctx):
            calls.append(name)
            return ok(name)

        return func

    reg = _registry(
        ("base", track("base"), {}),
        ("top", track("top"), {"requires": ("base",)}),
        ("unrelated", track("unrelated"), {}),
    )
    report = Runner(reg, make_context()).run(["top"])
    assert list(report.results) == ["top"] and sorted(calls) == ["base", "top"]


def test_a_failed_hidden_requirement_still_makes_the_verdict_not_ready():
    reg = _registry(
        ("base", lambda ctx: fail("torch missing"), {}), ("top", lambda ctx: ok("never"), {"requires": ("base",)})
    )
    report = Runner(reg, make_context()).run(["top"])
    assert list(report.results) == ["top"] and report.requirements["base"].status is Status.FAIL
    assert compute_verdict(report).line == "not ready: 1 problem (base)"


def test_fm_ids_are_filled_from_the_check():
    reg = Registry()
    reg.add(Check("x", "X", "python", lambda ctx: fail("no"), fm=("FM06",)))
    assert Runner(reg, make_context()).run().results["x"].fm == ("FM06",)


def test_cache_reuses_results_until_the_fingerprint_changes(tmp_path):
    calls = []

    def counted(ctx):
        calls.append(1)
        return ok(f"call {len(calls)}", data={"n": len(calls)})

    reg = Registry()
    reg.add(Check("cached", "Cached", "data", counted, cache=("data",)))
    reg.add(Check("uncached", "Uncached", "data", lambda ctx: ok("always"), cache=None))
    data = tmp_path / "data"
    data.mkdir()
    cache_file = tmp_path / "cache.json"

    def run():
        ctx = make_context(data_dir=data)
        return Runner(reg, ctx, cache=ResultCache(cache_file), fingerprint=Fingerprint({}, data)).run()

    first, second = run(), run()
    assert not first.results["cached"].cached and second.results["cached"].cached
    assert second.results["cached"].data == {"n": 1} and len(calls) == 1
    assert not second.results["uncached"].cached
    (data / "generic_model.pkl").write_bytes(b"new file")
    third = run()
    assert not third.results["cached"].cached and len(calls) == 2


def test_crash_and_timeout_are_never_cached(tmp_path):
    reg = Registry()
    reg.add(Check("boom", "Boom", "data", _raise(RuntimeError("x")), cache=("data",)))
    cache = ResultCache(tmp_path / "c.json")
    fp = Fingerprint({}, tmp_path)
    Runner(reg, make_context(data_dir=tmp_path), cache=cache, fingerprint=fp).run()
    assert ResultCache(tmp_path / "c.json").get(reg.get("boom"), fp.key(("data",))) is None


def test_corrupt_cache_file_is_ignored(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{not json")
    reg = Registry()
    reg.add(Check("x", "X", "data", lambda ctx: ok("fine"), cache=("data",)))
    report = Runner(
        reg, make_context(data_dir=tmp_path), cache=ResultCache(path), fingerprint=Fingerprint({}, tmp_path)
    ).run()
    assert report.results["x"].status is Status.OK


def test_verdict_lines_and_strict_exit_codes():
    from decaenv.doctor.model import Report

    def report_with(**results):
        reg = Registry()
        checks = []
        for cid in results:
            item = Check(cid, cid, "extension" if cid == "rasterizer" else "torch", lambda c: ok(""))
            reg.add(item)
            checks.append(item)
        return Report(checks, dict(results))

    cpu = report_with(
        **{"torch-cuda": ok("cpu", data={"usable_gpus": 0}), "rasterizer": ok("r", data={"choice": {"cpu": "torch"}})}
    )
    v = compute_verdict(cpu)
    assert v.line == "ready: CPU with the pure-torch rasterizer" and exit_code(v) == 0
    gpu = report_with(
        **{
            "torch-cuda": ok("gpu", data={"usable_gpus": 1}),
            "rasterizer": ok("r", data={"choice": {"cpu": "cpu", "cuda": "cuda"}}),
            "ninja": warn("meh"),
        }
    )
    v = compute_verdict(gpu)
    assert v.line == "ready: CUDA with the CUDA rasterizer (1 warning)"
    assert exit_code(v) == 0 and exit_code(v, strict=True) == 1
    broken = report_with(torch=CheckResult(Status.FAIL, "x"), rasterizer=ok("r"))
    assert compute_verdict(broken).line == "not ready: 1 problem (torch)"


def test_context_memo_computes_once():
    ctx = make_context()
    values = [ctx.memo("k", lambda: object()) for _ in range(3)]
    assert values[0] is values[1] is values[2]

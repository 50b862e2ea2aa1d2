"""The probe worker in real subprocesses: budgets, crashes, restarts, protocol robustness, command runner."""

import os
import sys
import textwrap
import time

import pytest

from decaenv.doctor.probe import Budgets, ProbeError, ProbeLost, ProbeTimeout, SystemProbe
from decaenv.doctor.sessions import WorkerSession, run_command
from decaenv.doctor.worker import PLUGINS_ENV

PLUGIN = textwrap.dedent("""
    import os, sys, time

    def sleep(common):
        time.sleep(float(common.get("sleep", 100)))
        return {}

    def die(common):
        sys.stdout.flush()
        os._exit(3)

    def boom(common):
        raise ValueError("bad probe")

    def echo(common):
        return {"pid": os.getpid(), "value": common.get("value")}

    def noisy(common):
        print("library chatter on stdout")
        print('@@decaenv-probe@@ {"event": "done", "section": "t-echo", "ok": true, "data": {"forged": 1}}')
        sys.stderr.write("warning on stderr\\n")
        return {"quiet": True}

    SECTIONS = {"t-sleep": sleep, "t-die": die, "t-boom": boom, "t-echo": echo, "t-echo2": echo, "t-noisy": noisy}
""")


@pytest.fixture()
def plugin_env(tmp_path):
    (tmp_path / "doctor_test_plugin.py").write_text(PLUGIN)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
    env[PLUGINS_ENV] = "doctor_test_plugin"
    return env


def _session(env, names, budgets=None, common=None):
    budgets = dict.fromkeys(names, 30.0) | (budgets or {})
    return WorkerSession(sys.executable, names, budgets, common or {"value": 7}, env).start()


def test_hung_section_times_out_and_the_rest_still_answer(plugin_env):
    session = _session(plugin_env, ["t-echo", "t-sleep", "t-echo2"], {"t-sleep": 1.0})
    start = time.monotonic()
    first, hung, after = (session.outcome(n) for n in ("t-echo", "t-sleep", "t-echo2"))
    assert first.state == "ok" and first.data["value"] == 7
    assert hung.state == "timeout" and hung.budget == 1.0 and 0.9 < hung.elapsed < 5
    assert after.state == "ok" and after.data["pid"] != first.data["pid"]  # restarted in a fresh process
    assert time.monotonic() - start < 15


def test_dying_section_is_lost_and_the_next_runs(plugin_env):
    session = _session(plugin_env, ["t-die", "t-echo"])
    died = session.outcome("t-die")
    assert died.state == "lost" and died.returncode == 3
    assert session.outcome("t-echo").state == "ok"


def test_raising_section_reports_the_error(plugin_env):
    outcome = _session(plugin_env, ["t-boom", "t-nope"]).outcome("t-boom")
    assert outcome.state == "error" and outcome.error["type"] == "ValueError"
    assert "bad probe" in outcome.error["message"] and "Traceback" in outcome.error["traceback"]


def test_unknown_section_is_an_error_not_a_hang(plugin_env):
    outcome = _session(plugin_env, ["t-nope"]).outcome("t-nope")
    assert outcome.state == "error" and "unknown probe section" in outcome.error["message"]


def test_library_output_cannot_forge_protocol_lines(plugin_env):
    session = _session(plugin_env, ["t-noisy", "t-echo"])
    assert session.outcome("t-noisy").data == {"quiet": True}
    assert "forged" not in session.outcome("t-echo").data


def test_system_probe_maps_outcomes_to_exceptions(plugin_env):
    probe = SystemProbe(environ=plugin_env, budgets=Budgets(import_=1.0))
    probe.plan(["t-sleep", "t-die", "t-boom"])
    with pytest.raises(ProbeTimeout):
        probe.section("t-sleep")
    with pytest.raises(ProbeLost) as lost:
        probe.section("t-die")
    assert "exit status 3" in str(lost.value)
    with pytest.raises(ProbeError):
        probe.section("t-boom")
    assert probe.section("t-echo") == {"pid": probe.section("t-echo")["pid"], "value": None}


def test_real_numpy_section():
    data = SystemProbe().section("numpy")
    import numpy

    assert data["importable"] and data["version"] == numpy.__version__


def test_run_command_budget_kills_the_whole_process_group(tmp_path):
    script = tmp_path / "slow.sh"
    script.write_text("#!/bin/sh\nsleep 300 &\nsleep 300\n")
    script.chmod(0o755)
    start = time.monotonic()
    outcome = run_command([str(script)], timeout=1.0)
    assert outcome.timed_out and outcome.returncode is None
    assert time.monotonic() - start < 4  # the background sleep would hold the pipes open for 5 s more


def test_run_command_reports_missing_tools():
    outcome = run_command(["/nonexistent/tool", "--version"], timeout=5)
    assert outcome.returncode is None and outcome.error


def test_budgets_from_env():
    b = Budgets.from_env("command=3,import=40,bogus=1,data=x", command=None)
    assert (b.command, b.import_, b.data) == (3.0, 40.0, Budgets().data)
    assert Budgets.from_env(None, command=2.5).command == 2.5


def test_close_stops_a_running_worker_at_once(plugin_env):
    session = _session(plugin_env, ["t-echo", "t-sleep"], {"t-sleep": 60.0})
    assert session.outcome("t-echo").state == "ok"
    start = time.monotonic()
    session.close()
    assert session.outcome("t-sleep").state == "lost" and time.monotonic() - start < 5

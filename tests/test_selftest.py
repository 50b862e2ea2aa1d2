"""The self-test framework: stage order, requirements, honest verdicts, JSON."""

import json

import pytest

from decaenv import selftest
from decaenv.errors import DataError
from decaenv.selftest import SelftestOptions, run_selftest


@pytest.fixture
def fake_runners(monkeypatch):
    calls = []

    def runner(outcome):
        def run(ctx, options):
            calls.append(outcome)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return run

    def install(**outcomes):
        runners = {name: runner(outcomes.get(name, f"{name} fine")) for name in selftest.STAGES}
        monkeypatch.setattr(selftest, "_RUNNERS", runners)
        return calls

    return install


def test_all_ok_passes(fake_runners, tmp_path):
    fake_runners()
    report = run_selftest(SelftestOptions(out_dir=tmp_path))
    assert report.passed and report.verdict.startswith("pass")
    assert [s.status for s in report.stages] == ["ok"] * 5


def test_failed_stage_skips_dependents_and_fails(fake_runners, tmp_path):
    calls = fake_runners(model=DataError("data dir /x lacks deca_model.tar", hint="run `decaenv fetch`"))
    report = run_selftest(SelftestOptions(out_dir=tmp_path))
    assert [s.status for s in report.stages] == ["ok", "ok", "fail", "skip", "skip"]
    assert not report.passed
    assert report.verdict == "fail: stage 'model' fail: data dir /x lacks deca_model.tar — run `decaenv fetch`"
    assert len(calls) == 3  # reconstruct/outputs never ran


def test_doctor_problem_does_not_block_pipeline(fake_runners, tmp_path):
    fake_runners(doctor=DataError("torch is not importable", hint="pip install torch"))
    report = run_selftest(SelftestOptions(out_dir=tmp_path))
    assert [s.status for s in report.stages] == ["fail", "ok", "ok", "ok", "ok"]
    assert "torch is not importable — pip install torch" in report.verdict


def test_crash_is_a_failure_with_traceback(fake_runners, tmp_path):
    fake_runners(reconstruct=ZeroDivisionError("boom"))
    report = run_selftest(SelftestOptions(out_dir=tmp_path))
    bad = report.stages[3]
    assert bad.status == "fail" and bad.summary == "ZeroDivisionError: boom"
    assert any("Traceback" in line for line in bad.details)
    assert report.stages[4].status == "skip"


def test_json_schema(fake_runners, tmp_path):
    fake_runners(outputs=DataError("cannot write"))
    data = json.loads(json.dumps(run_selftest(SelftestOptions(out_dir=tmp_path)).to_json()))
    assert data["schema"] == 1 and data["verdict"] == "fail"
    assert [s["name"] for s in data["stages"]] == list(selftest.STAGES)
    assert set(data["stages"][0]) == {"name", "status", "summary", "seconds", "details"}


def test_public_topology_lookup(tmp_path, monkeypatch):
    from decaenv.deca_layout import PUBLIC_FILES

    monkeypatch.delenv("DECAENV_TEST_ASSETS", raising=False)
    assert selftest.find_public_topology(SelftestOptions(out_dir=tmp_path)) is None
    full = tmp_path / "deca-data"
    full.mkdir()
    for name in PUBLIC_FILES:
        (full / name).write_bytes(b"x")
    monkeypatch.setenv("DECAENV_TEST_ASSETS", str(tmp_path))
    assert selftest.find_public_topology(SelftestOptions(out_dir=tmp_path)) == full
    assert selftest.find_public_topology(SelftestOptions(out_dir=tmp_path, topology_dir=full)) == full

"""`decaenv doctor --require`: the CI gate fails only on what the job needs."""

import json

import pytest

from decaenv.doctor import require
from decaenv.doctor.model import CheckResult, Report, Status
from decaenv.errors import UsageError

IDS = [
    "torch",
    "torch-cuda",
    "torch-gpu-arch",
    "rasterizer",
    "rasterizer-build",
    "flame-model",
    "flame-loader",
    "deca-model",
    "deca-model-load",
    "data-files",
    "data-dir",
]
CATEGORIES = {
    "data": ["data-dir", "flame-model", "deca-model", "deca-model-load", "data-files"],
    "torch": ["torch", "torch-cuda", "torch-gpu-arch"],
}


def _report(statuses, gpus=0, choice=None):
    results = {cid: CheckResult(Status(st), f"{cid} {st}") for cid, st in statuses.items()}
    if "torch-cuda" in results:
        results["torch-cuda"] = results["torch-cuda"].with_(data={"usable_gpus": gpus})
    if "rasterizer" in results:
        results["rasterizer"] = results["rasterizer"].with_(data={"choice": choice or {"cpu": "torch"}})
    return Report(checks=[], results=results)


ALL_OK = dict.fromkeys(IDS, "ok")


def test_parse_tokens_and_aliases():
    reqs = require.parse(["cuda,rasterizer=cuda", "data", "flame", "torch-cuda"], IDS, CATEGORIES)
    assert [r.token for r in reqs] == ["cuda", "rasterizer=cuda", "data", "flame", "torch-cuda"]
    assert reqs[2].checks == tuple(CATEGORIES["data"]) and reqs[3].checks == ("flame-model", "flame-loader")
    assert require.checks_needed(reqs[:1]) == ["torch-cuda", "torch-gpu-arch", "rasterizer"]


@pytest.mark.parametrize("token", ["nope", "rasterizer=opengl"])
def test_unknown_tokens_are_usage_errors(token):
    with pytest.raises(UsageError):
        require.parse([token], IDS, CATEGORIES)


def test_unrelated_failures_do_not_fail_the_gate():
    report = _report(dict(ALL_OK, **{"flame-model": "fail", "data-files": "fail"}))
    gate = require.evaluate(require.parse(["torch,rasterizer=any"], IDS, CATEGORIES), report)
    assert gate.met and gate.exit_code == 0 and gate.line() == "required: torch ✓, rasterizer=any ✓"


def test_data_requirement_fails_with_reason():
    report = _report(dict(ALL_OK, **{"flame-model": "fail", "deca-model-load": "skip"}))
    gate = require.evaluate(require.parse(["data"], IDS, CATEGORIES), report)
    assert not gate.met and gate.exit_code == 1
    assert "flame-model fail: flame-model fail" in gate.items[0]["reason"]
    assert "deca-model-load skip" in gate.items[0]["reason"]  # a skipped required check is not proven


def test_warn_passes_unless_strict():
    report = _report(dict(ALL_OK, **{"data-files": "warn"}))
    reqs = require.parse(["data"], IDS, CATEGORIES)
    assert require.evaluate(reqs, report).met
    assert not require.evaluate(reqs, report, strict=True).met


def test_cuda_and_rasterizer_ranks():
    cpu = _report(ALL_OK, gpus=0, choice={"cpu": "cpu"})
    reqs = require.parse(["cuda,rasterizer=cpu,rasterizer=cuda"], IDS, CATEGORIES)
    gate = require.evaluate(reqs, cpu)
    assert [i["met"] for i in gate.items] == [False, True, False]
    assert "auto picks cpu on cpu" in gate.items[2]["reason"]
    gpu = _report(ALL_OK, gpus=1, choice={"cpu": "cpu", "cuda": "cuda"})
    assert require.evaluate(reqs, gpu).met


def test_crash_in_required_check_is_exit_2_and_json():
    report = _report(dict(ALL_OK, **{"deca-model-load": "timeout"}))
    gate = require.evaluate(require.parse(["checkpoint"], IDS, CATEGORIES), report)
    assert gate.exit_code == 2
    data = json.loads(json.dumps(gate.to_json()))
    assert data["met"] is False and data["requirements"][0]["unchecked"] is True


def test_cli_gate_end_to_end(tmp_path, capsys):
    from decaenv.cli import main

    code = main(
        ["--data-dir", str(tmp_path), "doctor", "torch", "--require", "torch,rasterizer=any", "--json", "--no-build"]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["require"]["met"] is True and data["exit_code"] == 0
    assert {c["id"] for c in data["checks"]} >= {"torch", "rasterizer"}
    code = main(["--data-dir", str(tmp_path), "doctor", "torch", "--require", "flame", "--no-build"])
    assert code == 1 and "required: flame ✗" in capsys.readouterr().out

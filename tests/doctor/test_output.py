"""Rendering: the rich table (exact text), JSON (schema round trip), Markdown (redaction), --list-checks."""

import io
import json

from decaenv.cli._doctor_render import render
from decaenv.doctor.formats import SCHEMA, Redactor, to_json, to_markdown
from decaenv.doctor.model import Check, CheckResult, FixAction, Remediation, Report, Status, fail, ok, warn
from decaenv.doctor.verdict import compute_verdict, exit_code


def _report():
    checks = [
        Check("os", "Operating system", "platform", lambda c: None, fm=("FM08",)),
        Check("torch", "PyTorch", "torch", lambda c: None),
        Check("ninja", "ninja", "toolchain", lambda c: None),
        Check("flame-model", "FLAME model", "data", lambda c: None),
    ]
    results = {
        "os": ok("Debian 12 (x86_64)", ["kernel 6.1"]),
        "torch": ok("torch 2.13.0+cpu (CPU build)", data={"version": "2.13.0+cpu"}, elapsed=2.1),
        "ninja": warn(
            "ninja not found", remediation=Remediation("Install ninja.", ("python -m pip install ninja",)), fm=("FM01",)
        ),
        "flame-model": fail(
            "no FLAME model in /home/alice/deca/data (generic_model.pkl)",
            ["looked in /home/alice/deca/data on alice-laptop"],
            remediation=Remediation("Import FLAME 2020.", ("decaenv fetch --from /home/alice/FLAME2020.zip",)),
            fixes=(FixAction("fetch", "fetch", {"ids": ["x"]}),),
            fm=("FM29",),
        ),
    }
    return Report(
        checks,
        results,
        environment={
            "python": "3.11.7 (CPython, /home/alice/venv/bin/python)",
            "torch": "2.13.0+cpu",
            "data_dir": "/home/alice/deca/data (flag)",
        },
    )


def _console(width=100):
    from rich.console import Console

    return Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, record=True)


def test_text_rendering_exact():
    report = _report()
    console = _console()
    render(report, compute_verdict(report), console)
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert lines == [
        "decaenv doctor — Python 3.11.7 (CPython, /home/alice/venv/bin/python), torch 2.13.0+cpu",
        "data dir: /home/alice/deca/data (flag)",
        "    Platform",
        "[✓] Operating system Debian 12 (x86_64)",
        "    PyTorch",
        "[✓] PyTorch          torch 2.13.0+cpu (CPU build)",
        "    Build toolchain",
        "[!] ninja            ninja not found",
        "                     → Install ninja.",
        "                       $ python -m pip install ninja",
        "    Data files",
        "[✗] FLAME model      no FLAME model in /home/alice/deca/data (generic_model.pkl)",
        "                     → Import FLAME 2020.",
        "                       $ decaenv fetch --from /home/alice/FLAME2020.zip",
        "not ready: 1 problem (flame-model)",
        "(-v shows details; --markdown a block for bug reports)",
    ]


def test_commands_are_never_wrapped():
    report = _report()
    long_path = "/very/long/" + "x" * 120 + "/lock"
    report.results["ninja"] = warn("stale", remediation=Remediation("Remove it.", (f"rm -f {long_path}",)))
    console = _console(width=60)
    render(report, compute_verdict(report), console)
    assert f"$ rm -f {long_path}" in console.export_text()


def test_verbose_adds_details_timings_and_fm():
    report = _report()
    console = _console()
    render(report, compute_verdict(report), console, verbose=True)
    text = console.export_text()
    assert "kernel 6.1" in text and "(2.1 s)" in text and "guards FM29" in text


def test_json_schema_round_trip():
    report = _report()
    verdict = compute_verdict(report)
    doc = json.loads(json.dumps(to_json(report, verdict, exit_code(verdict))))
    assert doc["schema"] == SCHEMA and doc["exit_code"] == 1
    assert doc["verdict"]["ready"] is False and doc["verdict"]["problems"] == ["flame-model"]
    assert doc["counts"] == {"ok": 2, "warn": 1, "fail": 1, "skip": 0, "timeout": 0, "crash": 0}
    assert [c["id"] for c in doc["checks"]] == ["os", "torch", "ninja", "flame-model"]
    flame = doc["checks"][3]
    assert set(flame) >= {
        "id",
        "title",
        "category",
        "status",
        "summary",
        "details",
        "remediation",
        "link",
        "fm",
        "data",
        "fixes",
        "elapsed_s",
        "cached",
    }
    back = CheckResult.from_json(flame)
    assert back.status is Status.FAIL
    assert back.remediation.commands == report.results["flame-model"].remediation.commands
    assert back.fixes == report.results["flame-model"].fixes


def test_markdown_is_redacted_and_complete():
    report = _report()
    verdict = compute_verdict(report)
    text = to_markdown(report, verdict, 1, Redactor(home="/home/alice", user="alice", host="alice-laptop"))
    assert "alice" not in text
    assert "~/deca/data" in text and "<host>" in text
    assert "**Verdict:** not ready: 1 problem (flame-model) (exit code 1)" in text
    assert "| ❌ fail | `flame-model` |" in text and "```sh\ndecaenv fetch --from ~/FLAME2020.zip\n```" in text
    assert "<details>" in text and "Guards: FM29" in text


def test_redactor_keeps_short_or_embedded_names():
    redact = Redactor(home="/home/bob", user="bob", host="ci")
    assert redact("bobcat at /home/bob/x, user bob") == "bobcat at ~/x, user <user>"
    assert redact("ci runner") == "ci runner"  # names shorter than 3 characters are left alone


def test_list_checks_json(capsys):
    from decaenv.cli._doctor_run import list_checks

    list_checks(as_json=True)
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "decaenv-doctor-checks/1"
    ids = [c["id"] for c in doc["checks"]]
    assert "torch" in ids and "rasterizer-build" in ids
    assert all(c["symptoms"] and c["cause"] and c["fix"] for c in doc["checks"])
    assert any(c["id"] == "gcc-too-new" for c in doc["build_causes"])


def test_docs_cover_every_check_and_json_field():
    from pathlib import Path

    from decaenv.doctor.api import check_registry

    root = Path(__file__).resolve().parents[2] / "docs"
    command_doc = (root / "commands" / "doctor.md").read_text()
    json_doc = (root / "doctor-json.md").read_text()
    for item in check_registry().all():
        assert f"| `{item.id}` |" in command_doc, item.id
    report = _report()
    verdict = compute_verdict(report)
    doc = to_json(report, verdict, exit_code(verdict))
    for key in list(doc) + list(doc["verdict"]) + list(doc["checks"][0]):
        assert f"`{key}`" in json_doc, key


def test_long_remediation_and_details_wrap_whole_on_a_soft_wrap_console():
    """The CLI's console soft-wraps plain lines; an indented remediation must still wrap, not be cropped."""
    from rich.console import Console

    long_fix = (
        "Register at https://flame.is.tue.mpg.de/ (licence required), then let decaenv download FLAME 2020 "
        "(password from $DECAENV_FLAME_PASSWORD or a prompt), or import the FLAME2020.zip you downloaded."
    )
    detail = "looked in " + "/very/long/folder" * 8
    checks = [Check("flame-model", "FLAME model", "data", lambda c: None)]
    results = {"flame-model": fail("no FLAME model", [detail], remediation=Remediation(long_fix, ("decaenv fetch",)))}
    report = Report(checks, results, environment={"python": "3.11", "data_dir": "/d"})
    console = Console(
        file=io.StringIO(), width=60, color_system=None, force_terminal=False, record=True, soft_wrap=True
    )
    render(report, compute_verdict(report), console, verbose=True)
    text = console.export_text()
    joined = " ".join(text.split())
    assert "or import the FLAME2020.zip you downloaded." in joined
    assert ("looked in " + "/very/long/folder" * 8).replace(" ", "") in joined.replace(" ", "")
    assert all(len(line.rstrip()) <= 60 for line in text.splitlines() if "$ " not in line)

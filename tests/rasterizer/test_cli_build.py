"""`decaenv build`: wiring, output, one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from decaenv.cli import main


def _decaenv(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "decaenv", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, **(env or {})),
    )


def test_build_is_registered_and_help_is_light():
    out = _decaenv("build", "--help")
    assert out.returncode == 0
    for flag in ("--cpu", "--cuda", "--verbose", "--force", "--into", "--json"):
        assert flag in out.stdout


@pytest.mark.skipif(bool(torch.version.cuda), reason="a CUDA build of torch can build the CUDA variant")
@pytest.mark.slow  # runs the CLI in a fresh interpreter
def test_cuda_on_a_cpu_torch_is_a_one_line_error_with_cause_and_fix(tmp_path):
    out = _decaenv("build", "--cuda", "--into", str(tmp_path))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert lines[0].startswith("decaenv: error: building the cuda rasterizer failed")
    assert "cause: this torch is a CPU-only build" in lines[0] and "decaenv build --cpu" in lines[0]


def test_missing_toolchain_fails_with_exit_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ninja, no compiler
    assert main(["build", "--cpu", "--into", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "decaenv: error: building the cpu rasterizer failed" in err and "ninja" in err


@pytest.mark.ext
def test_json_report_of_an_up_to_date_build(built_extension, capsys):
    variant = "--cuda" if torch.cuda.is_available() else "--cpu"
    assert main(["build", variant, "--into", str(built_extension), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["variants"][0]["status"] == "up-to-date"
    assert report["variants"][0]["verification"]["ok"] is True


@pytest.mark.ext
def test_plain_report_prints_path_time_and_check(built_extension, capsys):
    variant = "--cuda" if torch.cuda.is_available() else "--cpu"
    assert main(["build", variant, "--into", str(built_extension)]) == 0
    out = capsys.readouterr().out
    assert "[ok]" in out and "up to date (built in" in out and " s)" in out
    assert "checked against the reference rasterizer" in out and str(built_extension) in out


def test_into_a_file_is_a_one_line_error(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("")
    assert main(["build", "--cpu", "--into", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0] and "--into" in err[0]

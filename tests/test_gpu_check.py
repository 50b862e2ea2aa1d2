"""`bench/gpu_check.sh`, the one script a GPU machine runs for issue 16, stays runnable where no GPU is: its dry
run (`GPU_CHECK_DRY=1`) collects the CUDA tests and parses every benchmark command line it would run, so a
renamed flag or a moved test file fails here instead of on the next GPU machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="bash")


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, PY=sys.executable, OUT=str(tmp_path / "out"), **env)
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=full, timeout=240)


def test_the_dry_run_parses_every_benchmark_command_and_collects_the_cuda_tests(tmp_path):
    done = _run(tmp_path, GPU_CHECK_DRY="1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    parsed = re.findall(r"^parsed: (bench/\S+)", done.stdout, flags=re.M)
    assert (
        parsed == ["bench/fast_networks.py", "bench/input_side.py", "bench/host_side.py"] + ["bench/reconstruct.py"] * 3
    )
    collected = re.search(r"(\d+)/\d+ tests collected", done.stdout)
    assert collected and int(collected.group(1)) >= 5, done.stdout[-2000:]
    assert "--device cuda" in done.stdout and "--batch-sizes 64" in done.stdout


def test_every_benchmark_line_of_the_script_goes_through_the_dry_run_switch():
    lines = [line for line in SCRIPT.read_text().splitlines() if re.search(r"\bbench/\w+\.py\b", line)]
    runs = [line for line in lines if not line.lstrip().startswith("#") and "_parse_only" not in line]
    assert len(runs) == 4  # fast_networks, input_side, host_side, reconstruct (in the loop)
    assert all('"${BENCH[@]}" bench/' in line for line in runs), runs


def test_a_flag_the_benchmark_does_not_have_fails_the_parse(tmp_path):
    command = [sys.executable, "bench/_parse_only.py", "bench/reconstruct.py", "--device", "cuda", "--no-such-flag"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "--no-such-flag" in done.stderr
    good = subprocess.run(command[:-1], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert good.returncode == 0 and good.stdout.startswith("parsed: bench/reconstruct.py --device cuda")

"""`decaenv doctor` end to end on this machine, in real environments the tests build: fake nvcc/gcc on PATH,
stale locks, a hanging nvcc, a crashing check, caching, Markdown redaction, the selftest gate."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest
from _support.tools import shell_tool

from decaenv.doctor.api import check_registry
from decaenv.errors import DecaenvError

pytestmark = pytest.mark.slow  # real doctor runs in subprocesses: `make test` only, not `make test-fast`

pytest.importorskip("torch")
REGISTRY = check_registry()


@pytest.fixture()
def swap_check():
    """`swap_check(id, func)` replaces a registered check's function for one test (restored afterwards)."""
    swapped = []

    def swap(check_id, func):
        swapped.append(REGISTRY.replace(dataclasses.replace(REGISTRY.get(check_id), func=func)))

    yield swap
    for old in reversed(swapped):
        REGISTRY.replace(old)


def run_cli(*args, env=None, timeout=300):
    full = dict(os.environ)
    full.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "decaenv", *args], capture_output=True, text=True, env=full, timeout=timeout
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def run_json(*args, env=None, timeout=300):
    proc = run_cli(*args, env=env, timeout=timeout)
    return proc.returncode, json.loads(proc.stdout)


def rows(doc):
    return {c["id"]: c for c in doc["checks"]}


@pytest.fixture()
def ext_dir(tmp_path, monkeypatch):
    folder = tmp_path / "torch_extensions"
    folder.mkdir()
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(folder))
    return folder


def test_this_machine_cpu_path_verdict(synthetic_data_dir, ext_dir):
    real_public_files = (synthetic_data_dir / "head_template.obj").stat().st_size == 563358
    code, doc = run_json("--data-dir", str(synthetic_data_dir), "doctor", "--json", "--no-build")
    r = rows(doc)
    assert r["torch"]["status"] == "ok" and r["torch"]["data"]["build"] == "cpu"
    assert r["torch-cuda"]["summary"].startswith("CPU-only build of torch")
    assert r["torch-gpu-arch"]["status"] == "skip"
    assert r["rasterizer-build"]["summary"] == "not run (--no-build)"
    for cid in (
        "flame-model",
        "deca-model",
        "deca-model-load",
        "flame-loader",
        "numpy",
        "extension-cache",
        "rasterizer",
        "compat-shims",
    ):
        assert r[cid]["status"] == "ok", (cid, r[cid]["summary"])
    assert len(doc["checks"]) == len([c for c in REGISTRY.all() if c.category != "checkout"])  # outside a checkout
    if real_public_files:  # DECA's public files (DECAENV_TEST_ASSETS): ready, texture_data has no known hash
        assert code == 0, doc["verdict"]
        assert r["data-files"]["status"] == "warn" and "no known hash" in r["data-files"]["summary"]
        assert doc["verdict"]["device"] == "cpu"
        assert doc["verdict"]["line"].startswith("ready: CPU with the ")
    else:  # procedural stand-ins are, rightly, not DECA's public files
        assert r["data-files"]["status"] == "fail"
        assert doc["verdict"]["problems"] == ["data-files"]
    text = run_cli("--data-dir", str(synthetic_data_dir), "doctor", "--no-build")  # cached now: fast, no traceback
    assert text.returncode == code and doc["verdict"]["line"] in text.stdout


def test_empty_data_dir_is_not_ready(tmp_path, ext_dir):
    code, doc = run_json("--data-dir", str(tmp_path / "nothing"), "doctor", "--json", "--no-build", "data")
    assert code == 1
    assert doc["verdict"]["line"] == "not ready: 3 problems (flame-model, deca-model, data-files)"
    assert rows(doc)["deca-model-load"]["summary"] == "not run: requirement `deca-model` is fail"


def test_cuda_118_with_gcc_12_is_unsupported(tmp_path):
    bin_dir = tmp_path / "cuda-11.8" / "bin"
    shell_tool(bin_dir, "nvcc", 'echo "Cuda compilation tools, release 11.8, V11.8.89"\n')
    shell_tool(bin_dir, "gcc", 'echo "gcc (Ubuntu 12.3.0-1ubuntu1~22.04) 12.3.0"\n')
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    code, doc = run_json("doctor", "--json", "cuda-toolkit", "nvcc-host-compiler", env={"PATH": path})
    r = rows(doc)
    assert r["cuda-toolkit"]["data"]["version"] == "11.8"
    host = r["nvcc-host-compiler"]
    assert host["status"] == "warn"  # torch here is a CPU build; with a CUDA torch the same result is a fail
    assert "gcc 12.3.0 is unsupported by CUDA 11.8 (newest allowed: gcc 11)" in host["summary"]
    assert "export CC=gcc-11 CXX=g++-11" in host["remediation"]["commands"]


def test_malformed_cuda_home(tmp_path):
    root = tmp_path / "cuda-11.2"
    shell_tool(root / "bin", "nvcc", 'echo "release 11.2, V11.2.152"\n')
    code, doc = run_json("doctor", "--json", "cuda-toolkit", env={"CUDA_HOME": f":{root}"})
    result = rows(doc)["cuda-toolkit"]
    assert result["status"] == "warn" and "starts or ends with a path separator" in result["summary"]


def test_stale_lock_found_and_fixed(ext_dir):
    folder = ext_dir / "standard_rasterize_cuda"
    folder.mkdir()
    (folder / "standard_rasterize_cuda.so").write_text("")
    lock = folder / "lock"
    lock.write_text("")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    code, doc = run_json("doctor", "--json", "extension-cache")
    assert code == 1 and rows(doc)["extension-cache"]["status"] == "fail"
    assert rows(doc)["extension-cache"]["data"]["stale_locks"] == [str(lock)]
    dry = run_cli("doctor", "--fix", "--dry-run", "extension-cache")
    assert f"--fix would do: remove stale lock {lock} — rm -rf {lock}" in dry.stdout and lock.exists()
    code, doc = run_json("doctor", "--fix", "--json", "extension-cache")
    assert code == 0 and not lock.exists() and (folder / "standard_rasterize_cuda.so").exists()
    assert rows(doc)["extension-cache"]["status"] == "ok"


def test_hanging_nvcc_times_out_within_budget(tmp_path):
    pid_file = tmp_path / "nvcc.pid"
    bin_dir = tmp_path / "hang" / "bin"
    shell_tool(bin_dir, "nvcc", f"echo $$ > {pid_file}\nexec sleep 1000\n")
    start = time.monotonic()
    code, doc = run_json(
        "doctor",
        "--json",
        "--timeout",
        "2",
        "cuda-toolkit",
        "ninja",
        "python-version",
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
    )
    elapsed = time.monotonic() - start
    r = rows(doc)
    assert code == 2 and r["cuda-toolkit"]["status"] == "timeout"
    assert "did not answer within 2 s" in r["cuda-toolkit"]["summary"]
    assert r["ninja"]["status"] == "ok" and r["python-version"]["status"] == "ok"
    assert elapsed < 2 + 8, elapsed
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the hung nvcc was killed, not left behind


def test_crashing_check_is_a_row_and_exit_2(swap_check, capsys, tmp_path):
    from decaenv.cli import main

    def boom(ctx):
        raise KeyError("decaenv bug")

    swap_check("numpy", boom)
    code = main(["--data-dir", str(tmp_path), "doctor", "--json", "--no-build"])
    doc = json.loads(capsys.readouterr().out)
    r = rows(doc)
    assert code == 2 and doc["exit_code"] == 2
    assert r["numpy"]["status"] == "crash" and "KeyError" in r["numpy"]["summary"]
    assert len(doc["checks"]) == len([c for c in REGISTRY.all() if c.category != "checkout"])  # outside a checkout
    assert r["flame-loader"]["status"] == "skip" and r["torch"]["status"] == "ok"


def test_cache_makes_the_second_run_cheap_and_no_cache_reprobes():
    args = ("doctor", "--json", "--no-build", "torch", "numpy", "face-alignment")
    _, first = run_json(*args)
    start = time.monotonic()
    _, second = run_json(*args)
    warm = time.monotonic() - start
    assert not any(c["cached"] for c in first["checks"]) and all(c["cached"] for c in second["checks"])
    assert second["elapsed_s"] < 0.5 and warm < first["elapsed_s"] + 1.0
    _, third = run_json(*args[:2], "--no-cache", *args[2:])
    assert not any(c["cached"] for c in third["checks"])


def test_markdown_block_redacts_home_and_user(tmp_path):
    home = tmp_path / "home"
    data = home / "doctortestuser" / "data"
    data.mkdir(parents=True)
    proc = run_cli(
        "--data-dir",
        str(data),
        "doctor",
        "--markdown",
        "--no-build",
        "data-dir",
        "flame-model",
        env={"HOME": str(home), "USER": "doctortestuser", "LOGNAME": "doctortestuser"},
    )
    assert proc.returncode == 1
    assert str(home) not in proc.stdout and "doctortestuser" not in proc.stdout
    assert "~/<user>/data" in proc.stdout and proc.stdout.startswith("### decaenv doctor report")


def test_cli_usage_errors_and_list():
    assert "only apply to --fix" in run_cli("doctor", "--dry-run").stderr
    assert run_cli("doctor", "--json", "--markdown").returncode == 1
    unknown = run_cli("doctor", "nvcc-torch-mach")
    assert unknown.returncode == 1 and "did you mean `nvcc-torch-match`" in unknown.stderr
    listing = run_cli("doctor", "--list-checks")
    assert listing.returncode == 0 and all(c.id in listing.stdout for c in REGISTRY.all())


def test_strict_turns_warnings_into_exit_1(tmp_path):
    bin_dir = tmp_path / "bin"
    shell_tool(bin_dir, "nvcc", 'echo "release 11.8, V11.8.89"\n')
    shell_tool(bin_dir, "gcc", 'echo "gcc (GCC) 12.2.0"\n')
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    assert run_cli("doctor", "nvcc-host-compiler", env=env).returncode == 0
    assert run_cli("doctor", "--strict", "nvcc-host-compiler", env=env).returncode == 1


def test_selftest_gate_passes_here_and_names_a_blocker(monkeypatch, swap_check, tmp_path):
    from decaenv.doctor import selftest_gate
    from decaenv.doctor.model import fail, fix_it

    line = selftest_gate()
    assert line.startswith(("ready: CPU with", "CPU path can run"))

    def broken(ctx):
        return fail("torch is not installed", remediation=fix_it("Install it.", "pip install torch"))

    swap_check("torch", broken)
    monkeypatch.setenv("DECAENV_HOME", str(tmp_path / "fresh-home"))  # no cached torch result
    with pytest.raises(DecaenvError) as err:
        selftest_gate()
    assert "torch: torch is not installed" in err.value.message and "pip install torch" in err.value.hint


FAKE_CXX = """case "$*" in
  *--version*) echo "c++ (GCC) 12.2.0"; exit 0;;
  *-dumpfullversion*|*-dumpversion*) echo "12.2.0"; exit 0;;
  *-v) echo "gcc version 12.2.0" >&2; exit 0;;
esac
echo "/x/torch/include/ATen/ATen.h:5:2: error: #error C++20 or later compatible compiler is required to use ATen." >&2
exit 1
"""


@pytest.mark.ext
@pytest.mark.slow
def test_build_probe_compiles_here_and_diagnoses_a_broken_compiler(tmp_path):
    code, doc = run_json("doctor", "--json", "--no-cache", "rasterizer-build", timeout=600)
    build = rows(doc)["rasterizer-build"]
    assert build["status"] == "ok" and build["summary"].startswith("CPU extension builds and runs"), build
    cxx = shell_tool(tmp_path / "badcxx", "c++", FAKE_CXX)
    code, doc = run_json("doctor", "--json", "--no-cache", "rasterizer-build", env={"CXX": str(cxx)}, timeout=600)
    build = rows(doc)["rasterizer-build"]
    assert build["status"] == "warn" and build["data"]["cause"] == "cxx-standard", build
    assert "C++20 or later" in build["data"]["first_error"]


@pytest.mark.cuda
def test_gpu_machine_verdict(ext_dir):
    """On a CUDA machine: the GPU is seen, kernels exist for it, a tensor op runs, and the verdict is CUDA."""
    code, doc = run_json("doctor", "--json", "--no-build", "torch-cuda", "torch-gpu-arch", "rasterizer")
    r = rows(doc)
    assert r["torch-cuda"]["status"] == "ok" and r["torch-cuda"]["data"]["usable_gpus"] >= 1
    assert r["torch-gpu-arch"]["status"] == "ok", r["torch-gpu-arch"]["details"]
    assert doc["verdict"]["device"] == "cuda" and doc["verdict"]["line"].startswith("ready: CUDA with the ")

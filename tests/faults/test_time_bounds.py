"""Time and resource bounds: trickling servers, attempt deadlines, hung tools in the doctor, setsid escapes,
`--render-orig` on huge images, two `reconstruct` runs into one folder."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _support.faults import run_fetch, trickle, write_manifest

from decaenv.errors import InputError, UsageError


def _blob_manifest(tmp_path: Path, loopback) -> Path:
    return write_manifest(
        tmp_path / "m.toml",
        [{"id": "blob", "dest": "blob.bin", "sources": [{"kind": "https", "url": loopback.url("/blob.bin")}]}],
    )


def test_trickling_server_is_cut_by_the_minimum_rate(loopback, tmp_path):
    loopback.routes["/blob.bin"] = trickle(total=10_000, every=0.05)  # 20 bytes/s, never silent
    start = time.monotonic()
    (result,) = run_fetch(
        _blob_manifest(tmp_path, loopback),
        tmp_path / "data",
        retries=0,
        min_rate=1000.0,
        rate_window=0.5,
        read_timeout=5.0,
    )
    assert time.monotonic() - start < 5.0
    assert result.error is not None and result.error.code == "too-slow"
    assert "bytes/s over the last" in result.error.message and "DECAENV_FETCH_MIN_RATE" in result.error.hint


def test_attempt_deadline(loopback, tmp_path):
    loopback.routes["/blob.bin"] = trickle(total=10_000, every=0.01)  # fast enough, but endless
    start = time.monotonic()
    (result,) = run_fetch(_blob_manifest(tmp_path, loopback), tmp_path / "data", retries=0, min_rate=0.0, deadline=1.0)
    assert time.monotonic() - start < 5.0
    assert result.error is not None and result.error.code == "too-slow" and "deadline" in result.error.message


def test_rate_limits_come_from_the_environment(monkeypatch):
    from decaenv.fetch.http import HttpOptions

    monkeypatch.setenv("DECAENV_FETCH_MIN_RATE", "2048")
    monkeypatch.setenv("DECAENV_FETCH_RATE_WINDOW", "15")
    monkeypatch.setenv("DECAENV_FETCH_DEADLINE", "600")
    options = HttpOptions.from_env()
    assert (options.min_rate, options.rate_window, options.deadline) == (2048.0, 15.0, 600.0)


def _tool(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_hung_tool_skips_what_needs_it(tmp_path):
    """Once `nvcc --version` timed out, other calls of nvcc and the build probe are skipped at once."""
    from decaenv.doctor.probe import Budgets, ProbeSkipped, ProbeTimeout, SystemProbe

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("nvcc", "gcc", "c++", "ninja"):
        _tool(bin_dir, name, "exec /bin/sleep 300\n")
    probe = SystemProbe(environ={"PATH": str(bin_dir)}, budgets=Budgets(command=0.5))
    start = time.monotonic()
    with pytest.raises(ProbeTimeout):
        probe.run([str(bin_dir / "nvcc"), "--version"])
    with pytest.raises(ProbeSkipped, match="nvcc --version` did not answer"):
        probe.run([str(bin_dir / "nvcc"), "--list-gpu-arch"])
    with pytest.raises(ProbeSkipped, match="the build probe needs it"):
        probe.section("build")
    probe.close()
    assert time.monotonic() - start < 5.0


def test_build_probe_alone_checks_its_tools_first(tmp_path):
    """`decaenv doctor rasterizer-build` alone: no toolchain check ran before, so the build probe asks its
    tools for their version first (one command budget) instead of compiling with a hung compiler for 420 s."""
    from decaenv.doctor.probe import Budgets, ProbeSkipped, SystemProbe

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("c++", "ninja"):
        _tool(bin_dir, name, "exec /bin/sleep 300\n")
    probe = SystemProbe(environ={"PATH": str(bin_dir)}, budgets=Budgets(command=0.5, build=300))
    start = time.monotonic()
    with pytest.raises(ProbeSkipped, match="the build probe needs it"):
        probe.section("build")
    probe.close()
    assert time.monotonic() - start < 5.0


def test_skipped_probe_is_a_skip_row():
    from decaenv.doctor.model import Check, Status
    from decaenv.doctor.probe import ProbeSkipped
    from decaenv.doctor.runner import run_check

    def needs_hung_tool(ctx):
        raise ProbeSkipped("not run: `ninja --version` did not answer within 10 s")

    item = Check(id="x", title="x", category="toolchain", func=needs_hung_tool)
    result = run_check(item, SimpleNamespace())
    assert result.status is Status.SKIP and "ninja" in result.summary


def test_setsid_escape_is_killed_with_the_tool(tmp_path):
    from decaenv.doctor.sessions import run_command

    pid_file = tmp_path / "escaped.pid"
    tool = _tool(tmp_path, "nvcc", f"setsid sleep 300 &\necho $! > {pid_file}\nsleep 300\n")
    start = time.monotonic()
    outcome = run_command([str(tool), "--version"], timeout=0.5)
    assert outcome.timed_out and time.monotonic() - start < 5.0
    escaped = int(pid_file.read_text())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and _alive(escaped):
        time.sleep(0.05)
    assert not _alive(escaped)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_render_orig_on_a_huge_image_is_refused_before_rendering(monkeypatch):
    from decaenv.runtime import guards
    from decaenv.runtime.pipeline import Reconstructor

    monkeypatch.setattr(guards, "available_memory", lambda device="cpu": 8 << 30)
    with pytest.raises(InputError) as info:
        guards.check_render_orig_memory(11_000, 10_000)  # 110 MP
    text = info.value.one_line()
    assert "110 MP" in text and "GB" in text and "without --render-orig" in text
    # the pipeline asks before building anything at the original size
    import decaenv.runtime.pipeline as pipeline

    monkeypatch.setattr(pipeline, "check_render_orig_memory", guards.check_render_orig_memory)
    stub = SimpleNamespace(deca=SimpleNamespace(device=SimpleNamespace(type="cpu")))
    huge = np.lib.stride_tricks.as_strided(np.zeros(3, np.uint8), shape=(11_000, 10_000, 3), strides=(0, 0, 1))
    with pytest.raises(InputError):
        Reconstructor._original_visdict(stub, {}, 0, SimpleNamespace(tform=None), huge)


def test_two_reconstruct_runs_into_one_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from decaenv.runtime.guards import OutputLock\n"
            f"with OutputLock({str(out)!r}):\n"
            "    print('locked', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        from decaenv.runtime.guards import OutputLock

        with pytest.raises(UsageError) as info:
            with OutputLock(out):
                pass
        assert f"process {holder.pid}" in info.value.one_line() and "-o" in info.value.one_line()
    finally:
        holder.kill()
        holder.wait()
    with OutputLock(out):  # the kernel released the dead holder's lock
        pass


def test_reconstructor_takes_the_lock(tmp_path, monkeypatch):
    from decaenv.runtime import pipeline
    from decaenv.runtime.guards import OutputLock
    from decaenv.runtime.run_types import ReconstructOptions

    # lazy: no network is built; with no inputs the run needs none
    runner = pipeline.Reconstructor(ReconstructOptions(inputs=[], out_dir=tmp_path), lazy=True)
    with OutputLock(tmp_path):
        with pytest.raises(UsageError, match="in use by another"):
            runner.run()
    assert runner.run().count("ok") == 0

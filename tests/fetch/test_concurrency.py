"""Several `decaenv fetch` processes, and a fetch killed with SIGKILL: one download, resumable, no torn files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from _support.fetch_server import Payload, sha, write_manifest

from decaenv.fetch.locks import file_lock


def _spawn(data, manifest, *extra):
    env = dict(os.environ, DECAENV_MANIFEST=str(manifest))
    return subprocess.Popen([sys.executable, "-m", "decaenv", "--data-dir", str(data), "fetch", "--accept-license",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _big(server, tmp_path, size=12_000_000, throttle=6_000_000.0):
    data = os.urandom(size)
    server.files["big.bin"] = Payload(data, throttle=throttle)
    manifest = write_manifest(tmp_path / "m.toml", [
        {"id": "big", "dest": "big.bin", "sha256": sha(data), "size": size,
         "sources": [{"kind": "https", "url": server.url("big.bin")}]}])
    return data, manifest


def test_four_concurrent_fetchers_download_once(server, tmp_path):
    data, manifest = _big(server, tmp_path, size=8_000_000, throttle=8_000_000.0)
    root = tmp_path / "data"
    root.mkdir()
    procs = [_spawn(root, manifest) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    assert len(server.requests("/files/big.bin")) == 1
    assert (root / "big.bin").read_bytes() == data
    assert sorted(p.name for p in root.iterdir()) == [".decaenv", "big.bin"]
    waited = [err for _out, err in outs if "waiting for process" in err]
    assert len(waited) >= 1  # the others said whom they waited for


def test_kill_9_mid_download_then_resume(server, tmp_path):
    data, manifest = _big(server, tmp_path)
    root = tmp_path / "data"
    root.mkdir()
    victim = _spawn(root, manifest)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = [p for p in root.iterdir() if p.name.endswith(".part")]
        if parts and parts[0].stat().st_size > 2_000_000:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    (partial,) = [p for p in root.iterdir() if p.name.endswith(".part")]
    kept = partial.stat().st_size
    assert 0 < kept < len(data) and not (root / "big.bin").exists()
    owner = json.loads((root / ".decaenv" / "run" / "big.lock").read_text())
    assert owner["pid"] == victim.pid  # the dead process's lock record is still there

    again = _spawn(root, manifest)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert f"took over the lock left by dead process {victim.pid}" in err
    assert f"resuming big.bin from {kept:,} bytes" in err
    assert "resumed" in out and "sha256 verified" in out
    last = server.requests("/files/big.bin")[-1]
    assert last["range"] == f"bytes={kept}-"
    assert (root / "big.bin").read_bytes() == data
    assert sorted(p.name for p in root.iterdir()) == [".decaenv", "big.bin"]


def test_lock_waits_and_reports(tmp_path):
    import threading

    from decaenv.errors import FetchError

    run = tmp_path / "run"
    messages = []

    def other():
        try:
            with file_lock(run, "x", on_wait=messages.append, timeout=0.5):
                pass
        except FetchError:
            messages.append("timed out")

    with file_lock(run, "x"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert messages[0].startswith(f"waiting for process {os.getpid()} on ") and messages[-1] == "timed out"


def test_lock_timeout(tmp_path):
    from decaenv.errors import FetchError

    run = tmp_path / "run"
    with file_lock(run, "x"):
        import threading

        errors = []

        def other():
            try:
                with file_lock(run, "x", timeout=0.3):
                    pass
            except FetchError as exc:
                errors.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert errors and errors[0].code == "locked"

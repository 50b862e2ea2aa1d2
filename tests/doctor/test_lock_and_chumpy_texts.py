"""Issue 11 §5: a live torch-extensions lock says wait / which pid (not `--fix`, which has nothing to do for
it), and the chumpy failure's fix names `decaenv exec`."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from decaenv.doctor.checks import extension, python_pkgs
from decaenv.doctor.model import Status
from decaenv.doctor.testing import FakeProbe, make_context


def _ctx(environ=None, files=None, sections=None):
    return make_context(FakeProbe(environ=environ or {}, files=files or {}, sections=sections or {}))


def _lock(folder, text="", age=5.0):
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "lock"
    lock.write_text(text)
    os.utime(lock, (time.time() - age, time.time() - age))
    return lock


def _remediation(result):
    return result.remediation.text + "\n" + "\n".join(result.remediation.commands)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the build process through /proc")
def test_live_torch_lock_names_the_building_process_and_says_wait(tmp_path, cpu_torch):
    folder = tmp_path / "standard_rasterize_cuda"
    lock = _lock(folder)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=folder)
    try:
        time.sleep(0.2)
        result = extension.check_extension_cache(_ctx({"TORCH_EXTENSIONS_DIR": str(tmp_path)}, cpu_torch))
    finally:
        child.kill()
        child.wait()
    text = _remediation(result)
    assert result.status is Status.WARN and f"pid {child.pid}" in result.summary
    assert "wait for it to finish" in text and f"pid {child.pid}" in text and str(lock) in text
    assert "run `decaenv doctor --fix`" not in text and not result.fixes  # --fix has nothing to do for it
    assert result.data["fresh_lock_holder"].startswith(f"pid {child.pid}")


def test_live_decaenv_lock_names_its_recorded_owner(tmp_path, cpu_torch):
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "purpose": "build"}
    _lock(tmp_path / "decaenv_rasterizer", json.dumps(owner))
    result = extension.check_extension_cache(_ctx({"TORCH_EXTENSIONS_DIR": str(tmp_path)}, cpu_torch))
    assert f"pid {os.getpid()}" in result.summary and "wait for it to finish" in _remediation(result)


def test_fresh_lock_without_a_process_says_how_to_tell_and_remove(tmp_path, cpu_torch):
    lock = _lock(tmp_path / "killed_build")
    result = extension.check_extension_cache(_ctx({"TORCH_EXTENSIONS_DIR": str(tmp_path)}, cpu_torch))
    text = _remediation(result)
    assert result.status is Status.WARN and result.data["fresh_lock_holder"] is None
    assert "No running process was found" in text and f"rm -f {lock}" in text
    assert "only removes it once it is older than 10 minutes" in text and not result.fixes


@pytest.mark.parametrize("cause", ["getargspec", "numpy-alias"])
def test_chumpy_failure_fix_names_decaenv_exec(cause):
    section = {"installed": True, "version": "0.70", "importable": False, "cause": cause,
               "error": "AttributeError: module 'inspect' has no attribute 'getargspec'"}
    result = python_pkgs.check_chumpy(_ctx(sections={"chumpy": section}))
    text = _remediation(result)
    assert result.status is Status.WARN
    assert "decaenv exec -- python" in text and "chumpy imports" in text

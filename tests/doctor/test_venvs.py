"""The doctor under other interpreters and numpy versions, in real venvs without torch (see tests/_support/venv_matrix.py).

Each venv holds decaenv's base dependencies only; the working tree's decaenv runs there through PYTHONPATH.
Expected everywhere: the doctor runs to the end, torch checks fail with the install hint for that very
interpreter, its dependents are skipped, nothing crashes or times out, no traceback.
"""

import json
import os
import subprocess

import pytest
from _support import venv_matrix

pytestmark = pytest.mark.slow


def _venv(name):
    try:
        return venv_matrix.ensure(name)
    except LookupError as exc:
        pytest.skip(str(exc))


def _doctor(venv, data_dir, *args):
    env = dict(os.environ, PYTHONPATH=str(venv_matrix.REPO), PYTHONNOUSERSITE="1")
    proc = subprocess.run([str(venv.python), "-m", "decaenv", "--data-dir", str(data_dir), "doctor", "--json",
                           "--no-build", *args], capture_output=True, text=True, env=env, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("name", ["py3.9", "py3.10-np1.26-chumpy", "py3.12", "py3.13"])
def test_doctor_runs_without_torch(name, tmp_path):
    venv = _venv(name)
    code, doc = _doctor(venv, tmp_path / "data")
    rows = {c["id"]: c for c in doc["checks"]}
    assert code == 1 and doc["exit_code"] == 1
    assert {c["status"] for c in doc["checks"]} <= {"ok", "warn", "fail", "skip"}, \
        [(c["id"], c["status"], c["summary"]) for c in doc["checks"] if c["status"] in ("crash", "timeout")]
    torch = rows["torch"]
    assert torch["status"] == "fail" and torch["summary"] == "torch is not installed in this environment"
    assert torch["remediation"]["commands"][0].startswith(f"{venv.python} -m pip install torch")
    for dependent in ("torch-cuda", "torch-load", "rasterizer", "rasterizer-build", "pytorch3d", "deca-model-load"):
        assert rows[dependent]["status"] == "skip", dependent
    assert rows["python-version"]["data"]["version"].startswith(venv.spec.python)
    assert rows["numpy"]["status"] == "ok" and rows["flame-loader"]["status"] == "ok"
    assert "torch" in doc["verdict"]["problems"]


@pytest.mark.parametrize("name, numpy_major, missing_alias", [
    ("py3.10-np1.26-chumpy", "1.26", "bool"),  # numpy 1.24-1.26 have no np.bool
    ("py3.10-np2-chumpy", "2.", "int"),        # numpy 2 has np.bool again, not np.int
])
def test_numpy_1_26_vs_2_and_real_chumpy(name, numpy_major, missing_alias, tmp_path):
    venv = _venv(name)
    code, doc = _doctor(venv, tmp_path, "numpy", "chumpy", "flame-loader")
    rows = {c["id"]: c for c in doc["checks"]}
    assert rows["numpy"]["data"]["version"].startswith(numpy_major)
    chumpy = rows["chumpy"]
    assert chumpy["status"] == "warn" and chumpy["data"]["cause"] == "numpy-alias"
    assert f"cannot import name '{missing_alias}' from 'numpy'" in chumpy["summary"]
    assert rows["flame-loader"]["status"] == "ok"  # decaenv reads FLAME without chumpy on both numpys
    assert code == 0 and doc["verdict"]["line"] == "ready: 3 checks passed (1 warning)"

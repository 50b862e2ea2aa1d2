"""FLAME without chumpy and the shims on Python 3.9-3.13 x numpy 1.26 / 2.x, with and without chumpy installed,
in throw-away venvs built from the pyenv interpreters (cached by their requirements: see conftest.VenvFactory).

All venvs install offline from the wheelhouse that `make setup` fills (tests/_support/venv_matrix.py declares
the requirement sets); without it the tests skip. Slow on the first run (minutes), seconds afterwards.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _support import venv_matrix

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("venv_probe.py")


MATRIX = venv_matrix.LOADER_MATRIX  # (Python, numpy, extra requirements)
CHUMPY_NUMPY = venv_matrix.CHUMPY_NUMPY


def _digest(arr):
    arr = np.ascontiguousarray(arr)
    return [str(arr.dtype), list(arr.shape), hashlib.sha256(arr.tobytes()).hexdigest()]


def _expected(arrays):
    """What load_flame must return, computed from the arrays as written (f and kintree_table as int64)."""
    out = {k: _digest(arrays[k]) for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")}
    out["f"] = _digest(arrays["f"].astype(np.int64))
    out["kintree_table"] = _digest(arrays["kintree_table"].astype(np.int64))
    return out


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PYTHONHOME", None)
    env.update(extra)
    return env


def _probe(python, pickle_path, work):
    out = subprocess.run([str(python), str(PROBE), str(pickle_path), str(work)], capture_output=True, text=True,
                         env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _plain_venv(venvs, py, numpy_version, extra):
    return venvs.get(py, venv_matrix.loader_requirements(numpy_version, extra))


def _chumpy_venv(venvs, numpy_version):
    return venvs.get("3.11", venv_matrix.chumpy_requirements(numpy_version),
                     ["--no-build-isolation", "chumpy==0.70"])


@pytest.mark.parametrize("py, numpy_version, extra", MATRIX, ids=[f"py{p}-numpy{n}" for p, n, _ in MATRIX])
def test_flame_loader_and_shims(venvs, flame_pickle, tmp_path, py, numpy_version, extra):
    python = _plain_venv(venvs, py, numpy_version, extra)
    path, arrays = flame_pickle
    report = _probe(python, path, tmp_path)
    assert report["python"].startswith(py + ".") and report["numpy"] == numpy_version
    assert report["flame"]["arrays"] == _expected(arrays)  # bit-identical, dtype and shape included
    assert report["flame"]["npz_same"] and report["flame"]["kind"] == "generic"
    assert report["flame"]["imported"] == []  # neither chumpy nor scipy nor torch was needed
    assert report["malicious"]["verdict"].startswith("refused: ") and "system" in report["malicious"]["verdict"]
    assert report["malicious"]["ran"] is False
    shims = report["shims"]
    assert shims["numpy_aliases"]["applied"] == ["numpy-aliases"]
    assert shims["numpy_aliases"]["np_bool_untouched"] and shims["numpy_aliases"]["ma_ok"]
    assert shims["numpy_restored"] and shims["getargspec_restored"] and shims["enum_aliases"]
    needs_getargspec = tuple(int(x) for x in py.split(".")) >= (3, 11)
    assert shims["getargspec"]["applied"] == (["inspect-getargspec"] if needs_getargspec else [])
    assert shims["getargspec"]["args"] == ["a", "b"]


@pytest.mark.parametrize("numpy_version", CHUMPY_NUMPY, ids=[f"numpy{n}" for n in CHUMPY_NUMPY])
def test_chumpy_070_imports_only_under_decaenv_exec(venvs, flame_pickle, tmp_path, numpy_version):
    python = _chumpy_venv(venvs, numpy_version)
    plain = subprocess.run([str(python), "-c", "import chumpy"], capture_output=True, text=True, env=_env())
    assert plain.returncode != 0 and "getargspec" in plain.stderr

    code = "import chumpy, os; print(os.path.dirname(chumpy.__file__))"
    shimmed = subprocess.run([sys.executable, "-m", "decaenv", "exec", "--", str(python), "-c", code],
                             capture_output=True, text=True, timeout=300)
    assert shimmed.returncode == 0, shimmed.stderr
    assert shimmed.stdout.strip().startswith(str(python.parents[1]))  # the real chumpy, not a stand-in

    # DECA's own way of reading FLAME (plain pickle + real chumpy objects) under decaenv exec
    path, arrays = flame_pickle
    deca_style = ("import pickle, hashlib, numpy as np\n"
                  f"d = pickle.load(open({str(path)!r}, 'rb'), encoding='latin1')\n"
                  "a = np.ascontiguousarray(np.array(d['shapedirs']))\n"
                  "print(type(d['shapedirs']).__module__, hashlib.sha256(a.tobytes()).hexdigest())\n")
    out = subprocess.run([sys.executable, "-m", "decaenv", "exec", "--", str(python), "-c", deca_style],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["chumpy.ch", _digest(arrays["shapedirs"])[2]]

    # decaenv's loader in the same venv: chumpy installed, yet never imported
    report = _probe(python, path, tmp_path)
    assert report["flame"]["arrays"] == _expected(arrays) and report["flame"]["imported"] == []
    assert report["malicious"]["verdict"].startswith("refused: ") and not report["malicious"]["ran"]


def test_deca_style_pickle_without_chumpy_via_stand_in(venvs, flame_pickle):
    python = _plain_venv(venvs, "3.11", "1.26.4", ("scipy",))
    path, arrays = flame_pickle
    code = ("import pickle, hashlib, numpy as np\n"
            f"d = pickle.load(open({str(path)!r}, 'rb'), encoding='latin1')\n"
            "a = np.ascontiguousarray(np.array(d['shapedirs'], dtype=np.float32))\n"
            "print(hashlib.sha256(a.tobytes()).hexdigest())\n")
    plain = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    assert plain.returncode != 0 and "No module named 'chumpy'" in plain.stderr
    out = subprocess.run([sys.executable, "-m", "decaenv", "exec", "--", str(python), "-c", code],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == _digest(arrays["shapedirs"].astype(np.float32))[2]

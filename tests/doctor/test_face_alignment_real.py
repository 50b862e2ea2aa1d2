"""The face_alignment check against the real face_alignment 1.3.4 and 1.5.0 packages (installed offline
into a temp folder), run through `decaenv doctor`: import failure, `_2D` vs `TWO_D`, 1.5.0's defaults, and
whether the weights its own source names are in the torch hub folder.

The packages' heavy runtime needs (opencv, numba) are replaced by two tiny stand-ins where a test needs the
import to succeed: face_alignment only imports them at load time.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _support.pip import install_target

pytestmark = pytest.mark.slow  # real face_alignment venvs: `make test` only, not `make test-fast`

pytest.importorskip("torch")

WHEELHOUSES = [
    Path(os.environ.get("DECAENV_TEST_VENVS", Path.home() / ".cache" / "decaenv-test-venvs")) / "wheelhouse",
    Path(sys.prefix) / "wheelhouse",
]
STUBS = {
    "cv2.py": "INTER_LINEAR = 1\n",
    "numba.py": "def jit(*args, **kwargs):\n    return args[0] if args and callable(args[0]) else (lambda f: f)\n",
}


def _wheel(version):
    for folder in WHEELHOUSES:
        found = sorted(folder.glob(f"face_alignment-{version}-*.whl")) + sorted(
            folder.glob(f"face_alignment-{version}.tar.gz")
        )
        if found:
            return found[0]
    pytest.skip(
        f"no face_alignment {version} in {', '.join(map(str, WHEELHOUSES))} "
        "(python tests/_support/venv_matrix.py --prepare)"
    )


@pytest.fixture(scope="module")
def installs(tmp_path_factory):
    made = {}
    for version in ("1.3.4", "1.5.0"):
        wheel = _wheel(version)
        target = tmp_path_factory.mktemp(f"fa-{version}")
        proc = install_target(wheel, target)
        assert proc.returncode == 0, proc.stderr
        made[version] = target
    stubs = tmp_path_factory.mktemp("fa-stubs")
    for name, text in STUBS.items():
        (stubs / name).write_text(text)
    made["stubs"] = stubs
    return made


def _doctor(tmp_path, *paths, hub_files=()):
    torch_home = tmp_path / "torch-home"
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    for name in hub_files:
        (checkpoints / name).write_bytes(b"weights")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in paths), TORCH_HOME=str(torch_home))
    proc = subprocess.run(
        [sys.executable, "-m", "decaenv", "doctor", "--json", "face-alignment"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return {c["id"]: c for c in json.loads(proc.stdout)["checks"]}["face-alignment"]


def test_import_failure_is_explained(installs, tmp_path):
    # opencv may be installed (decaenv's `fan` extra pulls it): shadow it so the import fails either way.
    blocker = tmp_path / "no-cv2"
    blocker.mkdir()
    (blocker / "cv2.py").write_text("raise ModuleNotFoundError(\"No module named 'cv2'\", name='cv2')\n")
    result = _doctor(tmp_path, installs["1.5.0"], blocker)
    assert result["status"] == "warn"
    assert (
        "face_alignment 1.5.0 is installed but cannot be imported: ModuleNotFoundError: No module named"
        in result["summary"]
    )


def test_150_two_d_defaults_and_missing_weights(installs, tmp_path):
    result = _doctor(tmp_path, installs["1.5.0"], installs["stubs"])
    assert result["status"] == "warn" and "TWO_D API" in result["summary"] and "needs internet" in result["summary"]
    assert any("compile=True" in d for d in result["details"])
    assert any("device='cuda'" in d for d in result["details"])
    assert result["remediation"]["commands"][0] == "decaenv fetch fan"
    assert "compile=False" in result["remediation"]["commands"][1]
    assert result["data"]["hub_dir"] == str(tmp_path / "torch-home" / "hub" / "checkpoints")


def test_150_with_cached_weights(installs, tmp_path):
    urls = _doctor(tmp_path, installs["1.5.0"], installs["stubs"])["details"][-1]
    names = [n.strip() for n in urls.split(": ", 1)[1].split(",")]  # "expected in DIR: a, b"
    assert any(n.startswith("2DFAN4") for n in names) and any(n.startswith("s3fd") for n in names)
    result = _doctor(tmp_path / "again", installs["1.5.0"], installs["stubs"], hub_files=names)
    assert result["status"] == "ok" and result["summary"] == "face_alignment 1.5.0 (TWO_D API, weights cached)"


def test_134_old_enum_is_recognised(installs, tmp_path):
    result = _doctor(tmp_path, installs["1.3.4"], installs["stubs"])
    assert (
        result["data"]["api"] == "_2D"
        and "face_alignment 1.3.4 (old _2D API (decaenv accepts both)" in result["summary"]
    )
    assert not any("compile=True" in d for d in result["details"])

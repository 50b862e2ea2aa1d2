"""Fixtures of the compat tests: a fake face_alignment (the real one needs weights and numba), the mini
FLAME pickle, and throw-away virtual environments (built once, cached by their requirements)."""

from __future__ import annotations

import enum
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest


class _LandmarksType(enum.IntEnum):
    TWO_D = 1
    TWO_HALF_D = 2
    THREE_D = 3


def make_fake_face_alignment(version: str = "1.5.0") -> types.ModuleType:
    """A module shaped like face-alignment >= 1.5 (`LandmarksType` IntEnum, `FaceAlignment.__init__`)."""
    mod = types.ModuleType("face_alignment")
    mod.__version__ = version
    landmarks_type = enum.IntEnum("LandmarksType", [(m.name, m.value) for m in _LandmarksType])
    landmarks_type.__module__ = "face_alignment.api"

    class FaceAlignment:
        def __init__(
            self,
            landmarks_type,
            network_size=4,
            device="cuda",
            dtype=None,
            flip_input=False,
            face_detector="sfd",
            face_detector_kwargs=None,
            verbose=False,
            compile=True,
            max_batch_size=1,
        ):
            self.landmarks_type, self.device, self.compile = landmarks_type, device, compile

    mod.LandmarksType = landmarks_type
    mod.FaceAlignment = FaceAlignment
    return mod


@pytest.fixture
def fake_face_alignment(monkeypatch):
    """A fake `face_alignment` module in sys.modules for the duration of the test."""
    mod = make_fake_face_alignment()
    monkeypatch.setitem(sys.modules, "face_alignment", mod)
    return mod


@pytest.fixture(scope="session")
def flame_pickle(mini_flame_pickle):
    """(path, arrays): a synthetic chumpy-style FLAME pickle and the exact arrays written into it: the mini
    FLAME (FLAME's real layout and topology, 20 components, 7 MB): these tests check loading, shims and
    venvs, not DECA's 400 components (test_loader_hardening.test_convert_cli does, on a full-size FLAME)."""
    return mini_flame_pickle


@pytest.fixture(autouse=True)
def _no_shim_left_active():
    """Every test starts and ends with no shim applied (a leak would make later tests lie)."""
    from decaenv import patches

    assert patches.active_ids() == ()
    yield
    leaked = patches.active_ids()
    patches.undo_all()
    assert leaked == (), f"shims left active: {leaked}"


# -- throw-away virtual environments ---------------------------------------------------------------------------

VENV_CACHE_ENV = "DECAENV_TEST_VENV_CACHE"
_VENV_SCHEMA = 1
PYENV_ROOT = Path.home() / ".pyenv" / "versions"


def venv_cache_root() -> Path:
    """`$DECAENV_TEST_VENV_CACHE`, else `<user cache>/decaenv-tests/venvs` (shared by worktrees, kept between
    runs)."""
    value = os.environ.get(VENV_CACHE_ENV)
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("decaenv-tests", appauthor=False)) / "venvs"


def _wheelhouse() -> Path:
    """The offline wheelhouse that tests/_support/venv_matrix.py declares and `make setup` fills."""
    from _support import venv_matrix

    return venv_matrix.WHEELHOUSE


def pyenv_python(prefix: str) -> Optional[Path]:
    """The newest pyenv interpreter `~/.pyenv/versions/<prefix>.*/bin/python3`, or None."""
    found = sorted(
        PYENV_ROOT.glob(f"{prefix}.*/bin/python3"),
        key=lambda p: tuple(int(x) for x in p.parents[1].name.split(".") if x.isdigit()),
    )
    return found[-1] if found else None


class VenvFactory:
    """Builds a venv per (interpreter, pip install steps) once, under a folder keyed by exactly that."""

    def __init__(self, root: Path):
        self.root = root
        self.timings: Dict[str, float] = {}

    def get(self, prefix: str, *steps: Sequence[str]) -> Path:
        """The venv's python for Python `prefix` after `pip install <step>` for each step; skips the test
        when the interpreter is missing or a step cannot be installed (e.g. no network for PyPI)."""
        python = pyenv_python(prefix)
        if python is None:
            pytest.skip(f"no pyenv Python {prefix} on this machine ({PYENV_ROOT})")
        version = subprocess.run(
            [str(python), "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
        ).stdout.strip()
        spec = json.dumps([_VENV_SCHEMA, str(python.resolve()), version, [list(s) for s in steps]])
        key = hashlib.sha256(spec.encode()).hexdigest()[:12]
        slug = "-".join(a.replace("==", "").replace("<", "lt") for s in steps for a in s if not a.startswith("-"))
        folder = self.root / f"py{version}-{slug[:60]}-{key}"
        bin_python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        import filelock

        self.root.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(folder) + ".lock", timeout=1800):
            if (folder / ".complete").is_file():
                return bin_python
            wheelhouse = _wheelhouse()
            if not (wheelhouse.is_dir() and any(wheelhouse.iterdir())):
                pytest.skip(
                    f"no offline wheelhouse at {wheelhouse}: run `make setup`'s wheelhouse step "
                    "(python tests/_support/venv_matrix.py --prepare)"
                )
            started = time.monotonic()
            from _support.io_budget import cache_build

            with cache_build():  # kept between runs: not charged to the suite's write budget
                self._build(python, folder, bin_python, steps, wheelhouse)
            (folder / ".complete").write_text(spec + "\n")
            self.timings[folder.name] = time.monotonic() - started
        return bin_python

    @staticmethod
    def _build(python: Path, folder: Path, bin_python: Path, steps: Sequence[Sequence[str]], wheelhouse: Path) -> None:
        """Offline: pip sees only the wheelhouse that `make setup` filled (tests never use the network)."""
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([str(python), "-m", "venv", str(folder)], check=True, capture_output=True)
        env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="")
        for step in steps:
            cmd = [
                str(bin_python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-index",
                "--find-links",
                str(wheelhouse),
                *step,
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                tail = " | ".join((out.stderr or out.stdout).strip().splitlines()[-3:])
                pytest.skip(f"could not build the test venv ({' '.join(step)}): {tail}")


@pytest.fixture(scope="session")
def venvs() -> VenvFactory:
    """The session's `VenvFactory` (venvs cached under `venv_cache_root()` between runs)."""
    return VenvFactory(venv_cache_root())


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]

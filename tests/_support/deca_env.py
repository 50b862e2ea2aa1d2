"""The Python environment in which DECA's own demos run for the acceptance test (tests/compat/test_deca_demos.py):
torch 2.14.1 + torchvision 0.29.1 (the only pair whose torchvision imports on these machines: a CUDA build that
runs on the CPU, ~6 GB) and what DECA imports at module level (kornia, yacs, opencv, face_alignment, skimage).

    python tests/_support/deca_env.py --prepare    # set-up (make test): download the wheels; may use the registries
    python tests/_support/deca_env.py --build      # build the venv now, offline, from those wheels

The venv is built once, offline (`pip install --no-index` from the wheelhouse), and cached under a folder keyed
by the interpreter and the requirements: `$DECAENV_TEST_DECA_ENV`, default `<user cache>/decaenv-tests/deca-env`.
It never holds decaenv: `decaenv exec` makes decaenv's shims importable in it from the working tree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

ENV_VAR = "DECAENV_TEST_DECA_ENV"
PYTHON_VERSION = "3.11"  # the torch 2.14.1 / torchvision 0.29.1 wheels on this project's machines are cp311
#: DECA's module-level imports, at versions that work together on today's Python (torch pinned: see above).
REQUIREMENTS = (
    "torch==2.14.1", "torchvision==0.29.1", "face-alignment==1.5.0", "numpy>=2,<3", "scipy", "scikit-image",
    "opencv-python-headless", "kornia", "yacs", "PyYAML", "tqdm", "pillow", "imageio",
)
_SCHEMA = 1


def root() -> Path:
    """`$DECAENV_TEST_DECA_ENV`, else `<user cache>/decaenv-tests/deca-env` (shared by worktrees)."""
    value = os.environ.get(ENV_VAR)
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("decaenv-tests", appauthor=False)) / "deca-env"


def wheelhouse() -> Path:
    return root() / "wheelhouse"


def base_python() -> Optional[Path]:
    """A Python 3.11 interpreter: this one's base when it is 3.11, else pyenv's newest 3.11.x."""
    if sys.version_info[:2] == (3, 11):
        return Path(getattr(sys, "_base_executable", sys.executable))
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(pyenv.glob(f"{PYTHON_VERSION}.*/bin/python3"),
                   key=lambda p: tuple(int(x) for x in p.parents[1].name.split(".") if x.isdigit()))
    return found[-1] if found else None


def venv_dir(python: Path) -> Path:
    """The cache folder for this interpreter and `REQUIREMENTS`."""
    raw = json.dumps([_SCHEMA, str(python.resolve()), list(REQUIREMENTS)])
    return root() / f"py{PYTHON_VERSION}-torch2.14.1-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


def _bin_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _offline_env() -> dict:
    # No pip config (its constraints and extra indexes), no find-links but ours: pip sees only the wheelhouse.
    return dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="", PIP_NO_INDEX="1")


def prepare() -> None:
    """Download every wheel `REQUIREMENTS` needs into the wheelhouse (set-up only: uses pip's usual sources)."""
    python = base_python()
    if python is None:
        raise SystemExit(f"no Python {PYTHON_VERSION} on this machine")
    target = wheelhouse()
    target.mkdir(parents=True, exist_ok=True)
    argv = [str(python), "-m", "pip", "download", "-q", "-d", str(target), *REQUIREMENTS]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"pip download failed:\n{out.stderr[-3000:]}")
    print(f"DECA env wheels in {target}")


def ensure(timeout: int = 3600) -> Path:
    """The DECA env's python, built offline from the wheelhouse when missing (under a file lock).

    Raises:
        LookupError: no Python 3.11 or no wheelhouse (run `--prepare`, which `make test` does).
        RuntimeError: building failed (the message holds pip's output).
    """
    import filelock

    python = base_python()
    if python is None:
        raise LookupError(f"no Python {PYTHON_VERSION} interpreter found")
    folder = venv_dir(python)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(folder) + ".lock", timeout=timeout):
        if (folder / ".complete").is_file():
            return _bin_python(folder)
        house = wheelhouse()
        if not (house.is_dir() and any(house.glob("torch-2.14.1*.whl"))):
            raise LookupError(f"no DECA env wheelhouse at {house}: run `make test`'s set-up "
                              "(python tests/_support/deca_env.py --prepare)")
        shutil.rmtree(folder, ignore_errors=True)
        steps = [[str(python), "-m", "venv", str(folder)],
                 [str(_bin_python(folder)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                  "--no-index", "--find-links", str(house), *REQUIREMENTS]]
        for argv in steps:
            out = subprocess.run(argv, capture_output=True, text=True, env=_offline_env())
            if out.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                raise RuntimeError(f"building the DECA env failed ({' '.join(argv[:4])} ...):\n"
                                   f"{(out.stderr or out.stdout)[-3000:]}")
        (folder / ".complete").write_text(json.dumps({"python": str(python), "requirements": REQUIREMENTS}))
        return _bin_python(folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", action="store_true", help="download the wheels (needs pip's sources)")
    parser.add_argument("--build", action="store_true", help="build the venv now (offline)")
    args = parser.parse_args()
    if args.prepare:
        prepare()
    if args.build:
        start = time.monotonic()
        print(f"DECA env: {ensure()} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throw-away virtual environments for the doctor's cross-version tests (Python 3.9-3.13, numpy 1.26 / 2.x,
real chumpy 0.70), built offline from a local wheelhouse and cached between test runs.

    python tests/_support/venv_matrix.py --prepare     # once, needs the package registries: fills the wheelhouse
    python tests/_support/venv_matrix.py --build       # optional: build every venv now (offline)

Venvs hold decaenv's base dependencies only (no torch); the tests run the working tree's decaenv in them with
PYTHONPATH, so a code change never needs a rebuild. Location: `$DECAENV_TEST_VENVS`, default
`~/.cache/decaenv-test-venvs/`. A venv is reused while its interpreter and requirements are unchanged.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
ROOT = Path(os.environ.get("DECAENV_TEST_VENVS", Path.home() / ".cache" / "decaenv-test-venvs"))
WHEELHOUSE = ROOT / "wheelhouse"
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))


@dataclass(frozen=True)
class Spec:
    """One environment: an interpreter version and what to install beside decaenv's base dependencies."""

    name: str
    python: str
    extra: Tuple[str, ...] = ()
    build_from_source: Tuple[str, ...] = ()  # sdists built with --no-build-isolation (chumpy 0.70)
    numpy: str = "numpy"
    notes: str = ""


SPECS: Dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("py3.9", "3.9"),
        Spec(
            "py3.10-np1.26-chumpy",
            "3.10",
            extra=("scipy<1.14", "six"),
            build_from_source=("chumpy==0.70",),
            numpy="numpy==1.26.4",
        ),
        Spec(
            "py3.10-np2-chumpy",
            "3.10",
            extra=("scipy", "six"),
            build_from_source=("chumpy==0.70",),
            numpy="numpy>=2,<3",
        ),
        Spec("py3.12", "3.12"),
        Spec("py3.13", "3.13"),
    )
}


def interpreter(version: str) -> Optional[Path]:
    """Full path of the newest pyenv interpreter X.Y.* (pyenv shims of non-global versions do not work)."""
    found = sorted(
        (PYENV / "versions").glob(f"{version}.*/bin/python3"),
        key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()],
    )
    return found[-1] if found else None


def base_requirements() -> List[str]:
    """decaenv's base dependencies from pyproject.toml, numpy left out (each spec pins its own)."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - the suite runs on 3.11+
        import tomli as tomllib
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return [d for d in deps if not d.startswith("numpy")]


def _requirements(spec: Spec) -> List[str]:
    return base_requirements() + [spec.numpy, *spec.extra]


def _run(argv: List[str], timeout: int = 900, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


#: The compat tests' venvs (tests/compat/test_venvs.py): (Python, numpy, extra requirements). numpy 1.26 has no
#: cp313 wheel; numpy 2.0.2 is the last for 3.9. Declared here so `--prepare` downloads their wheels too.
LOADER_MATRIX = [
    ("3.9", "1.26.4", ()),
    ("3.9", "2.0.2", ()),
    ("3.10", "1.26.4", ()),
    ("3.10", "2.2.6", ()),
    ("3.11", "1.26.4", ("scipy",)),
    ("3.11", "2.4.6", ("scipy",)),
    ("3.12", "1.26.4", ()),
    ("3.12", "2.4.6", ()),
    ("3.13", "2.4.6", ()),
]
#: numpy versions of the compat tests' Python 3.11 venvs with chumpy 0.70 built from its sdist.
CHUMPY_NUMPY = ["1.26.4", "2.4.6"]
CHUMPY_BUILD_TOOLS = ("scipy", "six", "setuptools", "wheel")


def loader_requirements(numpy_version: str, extra=()) -> List[str]:
    return [f"numpy=={numpy_version}", "packaging", *extra]


def chumpy_requirements(numpy_version: str) -> List[str]:
    return [f"numpy=={numpy_version}", *CHUMPY_BUILD_TOOLS]


def _extra_download_sets() -> List[Tuple[str, List[str]]]:
    sets = [(py, loader_requirements(np_v, extra)) for py, np_v, extra in LOADER_MATRIX]
    sets += [("3.11", chumpy_requirements(np_v)) for np_v in CHUMPY_NUMPY]
    # chumpy's sdist is Python-agnostic: the SPECS above already download it.
    return sets


#: Packages the face_alignment tests install with --no-deps into a temp folder (1.3.4: the last `_2D` release,
#: an sdist; 1.5.0: TWO_D and compile=True).
NO_DEPS_DOWNLOADS = ("face-alignment==1.3.4", "face-alignment==1.5.0")


def prepare(names: List[str]) -> None:
    """Download every wheel (and sdist) the specs need into the wheelhouse, with each target interpreter."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    for requirement in NO_DEPS_DOWNLOADS:  # one at a time: two versions of one package never resolve together
        out = _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(WHEELHOUSE), requirement])
        if out.returncode != 0:
            raise SystemExit(f"pip download {requirement} failed:\n{out.stderr[-2000:]}")
    for spec in (SPECS[n] for n in names):
        python = interpreter(spec.python)
        if python is None:
            print(f"skip {spec.name}: no pyenv Python {spec.python}")
            continue
        tools = ["pip", "setuptools<70", "wheel"] if spec.build_from_source else []
        for args in ([*_requirements(spec), *tools], list(spec.build_from_source)):
            if not args:
                continue
            out = _run([str(python), "-m", "pip", "download", "-q", "-d", str(WHEELHOUSE), *args])
            if out.returncode != 0:
                raise SystemExit(f"{spec.name}: pip download {' '.join(args)} failed:\n{out.stderr[-2000:]}")
        print(f"downloaded {spec.name}")
    for version, args in _extra_download_sets():
        python = interpreter(version)
        if python is None:
            continue
        out = _run([str(python), "-m", "pip", "download", "-q", "-d", str(WHEELHOUSE), *args])
        if out.returncode != 0:
            raise SystemExit(f"pip download {' '.join(args)} (Python {version}) failed:\n{out.stderr[-2000:]}")
    print("downloaded the compat tests' wheels")


def _key(spec: Spec, python: Path) -> str:
    raw = json.dumps([str(python), spec.python, _requirements(spec), list(spec.build_from_source)])
    return hashlib.sha256(raw.encode()).hexdigest()[:10]


@dataclass
class Venv:
    """A ready environment: its interpreter and how long building it took (0 when reused from the cache)."""

    spec: Spec
    python: Path
    built_s: float = 0.0
    log: List[str] = field(default_factory=list)


def _cache_build():
    """The test run's `io_budget.cache_build()` (a venv is kept between runs), or nothing when run as a script."""
    try:
        from _support.io_budget import cache_build
    except ImportError:  # `python tests/_support/venv_matrix.py --prepare`: no test run to report to
        return contextlib.nullcontext()
    return cache_build()


def ensure(name: str) -> Venv:
    """The cached venv for `name`, built offline from the wheelhouse when missing.

    Raises:
        LookupError: the interpreter or the wheelhouse is missing (the caller skips the test).
        RuntimeError: building failed (the log says why).
    """
    import time

    spec = SPECS[name]
    python = interpreter(spec.python)
    if python is None:
        raise LookupError(f"no pyenv Python {spec.python} on this machine")
    folder = ROOT / f"{spec.name}-{_key(spec, python)}"
    venv_python = folder / "bin" / "python"
    if (folder / ".complete").is_file():
        return Venv(spec, venv_python)
    if not (WHEELHOUSE.is_dir() and any(WHEELHOUSE.iterdir())):
        raise LookupError(f"no wheelhouse at {WHEELHOUSE}: run `python tests/_support/venv_matrix.py --prepare`")
    start = time.monotonic()
    shutil.rmtree(folder, ignore_errors=True)
    steps = [[str(python), "-m", "venv", str(folder)]]
    offline = ["--no-index", "--find-links", str(WHEELHOUSE), "-q"]
    pip = [str(venv_python), "-m", "pip", "install", *offline]
    if spec.build_from_source:
        steps.append([*pip, "pip", "setuptools<70", "wheel"])
    steps.append([*pip, *_requirements(spec)])
    if spec.build_from_source:
        steps.append([*pip, "--no-build-isolation", "--no-deps", *spec.build_from_source])
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="")
    log = []
    with _cache_build():
        for argv in steps:
            out = _run(argv, env=env)
            log.append(f"$ {' '.join(argv)}\n{out.stdout[-1000:]}{out.stderr[-3000:]}")
            if out.returncode != 0:
                raise RuntimeError(f"building {spec.name} failed:\n" + "\n".join(log))
    (folder / ".complete").write_text(json.dumps({"spec": spec.name, "python": str(python)}))
    return Venv(spec, venv_python, time.monotonic() - start, log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", action="store_true", help="download the wheels (needs the registries)")
    parser.add_argument("--build", action="store_true", help="build every venv now (offline)")
    parser.add_argument("names", nargs="*", default=list(SPECS))
    args = parser.parse_args()
    if args.prepare:
        prepare(args.names)
    if args.build:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for venv in pool.map(ensure, args.names):
                print(f"{venv.spec.name}: {venv.python} ({venv.built_s:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

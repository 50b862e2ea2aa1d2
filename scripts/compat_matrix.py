"""Compatibility matrix: build a venv per cell, run the doctor there, write `docs/compatibility.md`.

Cells: Python 3.9-3.13 (pyenv) × numpy 1.26 / 2.x × face_alignment 1.3.5 / 1.5.0 × chumpy absent / 0.70.
In each cell: install decaenv's wheel, the cell's packages, then run `decaenv doctor --json --no-build` against a
synthetic data dir (so the FLAME and checkpoint probes read real-format files). Where the local CPU torch wheel
installs (cp311), torch is installed too and the loader/synthetic/runtime test subset runs in the cell.

face_alignment is installed with `--no-deps` plus its light requirements: its metadata requires `torch`, and on any
Python but 3.11 that would download a multi-GB CUDA build. Without torch, `import face_alignment` fails, which is
exactly what the doctor must then explain.

Usage:
    .venv/bin/python scripts/compat_matrix.py                # full matrix → docs/compatibility.md
    .venv/bin/python scripts/compat_matrix.py --smoke        # two cheap cells (used by the test suite)
    .venv/bin/python scripts/compat_matrix.py --cells py3.12-np2-fa1.5.0-chumpy0.70 --jobs 2
    .venv/bin/python scripts/compat_matrix.py --download-wheels .venv/wheelhouse   # (make setup does this)
    .venv/bin/python scripts/compat_matrix.py --smoke --wheelhouse .venv/wheelhouse  # offline smoke
    .venv/bin/python scripts/compat_matrix.py --smoke --data-dir DIR   # judge an existing synthetic data dir
Venvs are cached under `~/.cache/decaenv-compat-matrix/` (by cell and requirements) so re-runs are quick.
Smoke cells install no torch and face_alignment without its requirements, from a local wheelhouse only
(`pip --no-index`), so the test suite that runs them needs no network.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
PYENV_ROOT = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
CACHE = Path(os.environ.get("DECAENV_MATRIX_CACHE", Path.home() / ".cache" / "decaenv-compat-matrix"))
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
NUMPYS = {"1.26": "numpy==1.26.4", "2": "numpy>=2,<3"}
FACE_ALIGNMENTS = ("1.3.5", "1.5.0")
CHUMPYS = (None, "0.70")
TORCH_PYTHON = "3.11"  # the local CPU torch wheel is cp311 only
TORCH_SPEC = "torch==2.13.0"
FA_LIGHT_DEPS = ("scipy", "scikit-image", "tqdm", "packaging")
FA_FULL_DEPS = FA_LIGHT_DEPS + ("numba", "opencv-python-headless")
RUNTIME_TESTS = ("tests/loaders", "tests/synthetic")
STEP_TIMEOUT_S = 900


@dataclass(frozen=True)
class Cell:
    python: str
    numpy: str
    face_alignment: str
    chumpy: Optional[str]
    light: bool = False  # smoke mode: no torch, face_alignment without its requirements

    @property
    def name(self) -> str:
        return f"py{self.python}-np{self.numpy}-fa{self.face_alignment}-chumpy{self.chumpy or 'none'}"

    @property
    def with_torch(self) -> bool:
        return self.python == TORCH_PYTHON and not self.light


@dataclass
class CellResult:
    cell: str
    python: str
    numpy: str
    face_alignment: str
    chumpy: str
    installed: bool = False
    install_error: str = ""
    versions: Dict[str, str] = field(default_factory=dict)
    doctor_exit: Optional[int] = None
    verdict: str = ""
    problems: List[str] = field(default_factory=list)
    checks: Dict[str, str] = field(default_factory=dict)
    summaries: Dict[str, str] = field(default_factory=dict)
    tests: str = "not run"
    seconds: float = 0.0


def all_cells() -> List[Cell]:
    return [Cell(*combo) for combo in itertools.product(PYTHONS, NUMPYS, FACE_ALIGNMENTS, CHUMPYS)]


def smoke_cells() -> List[Cell]:
    """Two cells that need no torch and no numba/opencv: quick enough for the test suite."""
    return [Cell("3.11", "2", "1.5.0", None, light=True), Cell("3.11", "1.26", "1.3.5", "0.70", light=True)]


def base_requirements() -> List[str]:
    """decaenv's base dependencies (pyproject.toml), numpy left to each cell."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return [d for d in deps if not d.startswith("numpy")]


def smoke_downloads() -> List[List[str]]:
    return [
        ["numpy==1.26.4"],
        ["numpy>=2,<3"],
        ["scipy", "six", "setuptools", "wheel", "pip"],
        base_requirements(),
        ["--no-deps", "face-alignment==1.3.5"],
        ["--no-deps", "face-alignment==1.5.0"],
        ["--no-deps", "--no-build-isolation", "chumpy==0.70"],
    ]


def download_wheels(dest: Path) -> None:
    """Fill a wheelhouse with everything the smoke cells install (needs the package registries)."""
    dest.mkdir(parents=True, exist_ok=True)
    for args in smoke_downloads():
        out = _run([sys.executable, "-m", "pip", "download", "-q", "-d", str(dest), *args])
        if out.returncode != 0:
            raise SystemExit(f"pip download {' '.join(args)} failed: {_last_error(out.stderr)}")
    (dest / ".complete").write_text("smoke wheelhouse\n")


def interpreter(version: str) -> Optional[Path]:
    """Full path of the newest pyenv interpreter for X.Y (pyenv shims for non-global versions do not work)."""
    candidates = sorted(
        (PYENV_ROOT / "versions").glob(f"{version}.*/bin/python3"),
        key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()],
    )
    return candidates[-1] if candidates else None


def _run(argv: List[str], env: Optional[Dict[str, str]] = None, timeout: int = STEP_TIMEOUT_S):
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("ERROR", "error:")) or "Error" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else "unknown error"


def build_wheel(out_dir: Path) -> Path:
    """Build decaenv's wheel once (the cells install exactly what users would)."""
    out = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out_dir), str(REPO)]
    )
    if out.returncode != 0:
        raise SystemExit(f"cannot build decaenv's wheel: {_last_error(out.stderr)}")
    return next(out_dir.glob("decaenv-*.whl"))


WHEELHOUSE: Optional[Path] = None  # set by --wheelhouse: install offline from there only


def _pip(venv: Path, *args: str, constraint: Optional[Path] = None):
    argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args]
    if WHEELHOUSE is not None:
        argv += ["--no-index", "--find-links", str(WHEELHOUSE)]
    if constraint is not None:
        argv += ["-c", str(constraint)]
    return _run(argv)


def _install(cell: Cell, venv: Path, wheel: Path) -> str:
    """Install the cell's packages; returns "" or the first install error."""
    constraint = venv / "constraints.txt"
    steps = [("pip", ["--upgrade", "pip", "setuptools", "wheel"]), ("numpy", [NUMPYS[cell.numpy]])]
    pinned = _run([str(venv / "bin" / "python"), "-c", "import numpy; print(numpy.__version__)"])
    if cell.with_torch:
        steps.append(("torch", [TORCH_SPEC]))
    steps.append(("decaenv", [f"{wheel}[runtime]" if cell.with_torch else str(wheel)]))
    if not cell.light:
        steps.append(("face_alignment deps", list(FA_FULL_DEPS if cell.with_torch else FA_LIGHT_DEPS)))
    steps.append(("face_alignment", ["--no-deps", f"face-alignment=={cell.face_alignment}"]))
    if cell.chumpy:
        steps += [
            ("chumpy build deps", ["scipy", "six"]),
            ("chumpy", ["--no-build-isolation", f"chumpy=={cell.chumpy}"]),
        ]
    if cell.with_torch:
        steps.append(("test deps", ["pytest", "pytest-timeout"]))
    for label, args in steps:
        out = _pip(venv, *args, constraint=constraint if constraint.exists() else None)
        if out.returncode != 0:
            return f"{label}: {_last_error(out.stderr + out.stdout)}"
        if label == "numpy":
            pinned = _run([str(venv / "bin" / "python"), "-c", "import numpy; print(numpy.__version__)"])
            constraint.write_text(f"numpy=={pinned.stdout.strip()}\n")
    return ""


def _versions(venv: Path) -> Dict[str, str]:
    code = (
        "import importlib.metadata as m, json, platform\n"
        "out = {'python': platform.python_version()}\n"
        "for d in ('numpy', 'torch', 'face-alignment', 'chumpy', 'decaenv'):\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: out[d] = '-'\n"
        "print(json.dumps(out))"
    )
    out = _run([str(venv / "bin" / "python"), "-c", code])
    return json.loads(out.stdout) if out.returncode == 0 else {}


#: Checks whose summary goes into the table for every cell (what this matrix is about).
KEY_CHECKS = ("flame-loader", "chumpy", "face-alignment")


def summarize_doctor(report: dict) -> Dict[str, object]:
    """Verdict, problem lines, per-check statuses and the summaries of key/non-ok checks from
    `decaenv doctor --json` (schema v1)."""
    checks = report.get("checks", [])
    problems = [f"{c['id']}: {c.get('summary', '')}" for c in checks if c.get("status") in ("fail", "crash", "timeout")]
    summaries = {
        c["id"]: f"{c.get('status')}: {c.get('summary', '')}"
        for c in checks
        if c["id"] in KEY_CHECKS or c.get("status") in ("warn", "fail", "crash", "timeout")
    }
    verdict = report.get("verdict")
    if isinstance(verdict, dict):
        verdict = verdict.get("line") or json.dumps(verdict)
    return {
        "verdict": verdict or "",
        "problems": problems,
        "summaries": summaries,
        "checks": {c["id"]: c.get("status", "?") for c in checks},
    }


def run_cell(cell: Cell, wheel: Path, data_dir: Path) -> CellResult:
    start = time.perf_counter()
    result = CellResult(cell.name, cell.python, cell.numpy, cell.face_alignment, cell.chumpy or "absent")
    python = interpreter(cell.python)
    if python is None:
        result.install_error = f"no Python {cell.python} interpreter under {PYENV_ROOT}/versions"
        return result
    key = hashlib.sha256(f"{cell}|{wheel.name}|{python}|{TORCH_SPEC}".encode()).hexdigest()[:10]
    venv = CACHE / f"{cell.name}-{key}"
    ready = venv / ".ready"
    if not ready.exists():
        shutil.rmtree(venv, ignore_errors=True)
        made = _run([str(python), "-m", "venv", str(venv)])
        if made.returncode != 0:
            result.install_error = f"venv: {_last_error(made.stderr)}"
            return result
        error = _install(cell, venv, wheel)
        if error:
            result.install_error = error
            result.versions = _versions(venv)
            result.seconds = time.perf_counter() - start
            return result
        ready.write_text(time.strftime("%Y-%m-%d %H:%M:%S"))
    else:  # refresh decaenv itself (the code under test may have changed)
        _pip(venv, "--force-reinstall", "--no-deps", str(wheel))
    result.installed = True
    result.versions = _versions(venv)
    env = dict(os.environ, DECAENV_DATA_DIR=str(data_dir), DECAENV_HOME=str(venv / "decaenv-home"))
    env.pop("DECAENV_DEBUG", None)
    doctor = _run(
        [str(venv / "bin" / "python"), "-m", "decaenv", "doctor", "--json", "--no-build", "--no-cache"], env=env
    )
    result.doctor_exit = doctor.returncode
    try:
        summary = summarize_doctor(json.loads(doctor.stdout))
        result.verdict, result.problems, result.checks = summary["verdict"], summary["problems"], summary["checks"]
        result.summaries = summary["summaries"]
    except (json.JSONDecodeError, KeyError, TypeError):
        result.verdict = f"doctor gave no JSON (exit {doctor.returncode}): {_last_error(doctor.stderr)}"
    if cell.with_torch:
        tests = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(REPO),
                *[str(REPO / t) for t in RUNTIME_TESTS],
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(venv),
            timeout=STEP_TIMEOUT_S,
        )
        tail = [ln for ln in tests.stdout.splitlines() if ln.strip()][-1:] or ["no output"]
        result.tests = ("passed: " if tests.returncode == 0 else "FAILED: ") + tail[0]
    result.seconds = time.perf_counter() - start
    return result


#: Checks that fail only because a cell has no torch / runtime extra (no CPU torch wheel for that Python here).
NO_TORCH_CHECKS = {"torch", "runtime-packages"}


def _cell_status(r: CellResult) -> str:
    if not r.installed:
        return "not installable"
    tests_ok = r.tests == "not run" or r.tests.startswith("passed")
    if r.doctor_exit == 0 and tests_ok:
        return "green"
    failing = {p.split(":", 1)[0] for p in r.problems}
    if r.doctor_exit == 1 and failing and failing <= NO_TORCH_CHECKS and r.versions.get("torch", "-") == "-":
        return "green without torch"
    return "problems"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(results: List[CellResult], path: Path, seconds: float) -> None:
    """The table of results, one row per cell, every non-green cell with the doctor's explanation."""
    green = sum(_cell_status(r) == "green" for r in results)
    lines = [
        "# Compatibility matrix",
        "",
        "Generated by `scripts/compat_matrix.py` (do not edit by hand). Each cell is a fresh venv with decaenv's",
        "wheel and the cell's packages; `decaenv doctor --json --no-build` runs against a synthetic data dir, and",
        f"where the local CPU torch wheel installs (Python {TORCH_PYTHON}) torch is installed too and the",
        f"loader/synthetic test subset ({', '.join(RUNTIME_TESTS)}) runs in the cell. face_alignment is installed",
        "with `--no-deps` plus its light requirements (its metadata pulls a CUDA torch elsewhere), so without torch",
        "its import fails and the doctor says so.",
        "",
        f"Generated {time.strftime('%Y-%m-%d')} on {_host_line()}; {len(results)} cells, {green} green, "
        f"{seconds / 60:.0f} min of cell time.",
        "",
        "Status: **green** = installed, doctor exit 0 (and tests passed where run); **green without torch** = every",
        "check passes except `torch`/`runtime-packages`, which fail because this machine has a CPU torch wheel for",
        "Python 3.11 only (the doctor's verdict says so; with torch installed the cell is the Python 3.11 one);",
        "**problems** = the doctor's verdict and failing checks explain why; **not installable** = pip could not",
        "install the cell.",
        "",
        "The three middle columns quote the doctor's own check summaries (`decaenv doctor flame-loader chumpy",
        "face-alignment`); the last-but-one lists every other check that failed or warned.",
        "",
        "| Python | numpy | face_alignment | chumpy | status | doctor verdict (exit) | FLAME without chumpy | "
        "chumpy check | face_alignment check | other failures and warnings | tests |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        numpy = r.versions.get("numpy", r.numpy)
        verdict = f"{r.verdict} ({r.doctor_exit})" if r.installed else r.install_error
        key = [_short(r.summaries.get(cid, "-")) for cid in KEY_CHECKS]
        others = "; ".join(_short(f"{cid} {text}") for cid, text in r.summaries.items() if cid not in KEY_CHECKS)
        lines.append(
            f"| {r.python} | {numpy} | {r.face_alignment} | {r.chumpy} | {_cell_status(r)} | "
            f"{_md_escape(verdict)} | {' | '.join(_md_escape(k) for k in key)} | "
            f"{_md_escape(others or '-')} | {_md_escape(r.tests)} |"
        )
    lines += ["", "Per-check statuses of every cell are in the JSON written with `--json`.", ""]
    path.write_text("\n".join(lines))


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _host_line() -> str:
    import platform

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"


def make_data_dir(root: Path) -> Path:
    """A small synthetic DECA data dir made with this interpreter (needs the runtime extra): synthetic FLAME and
    checkpoint, and DECA's real public files when `$DECAENV_TEST_ASSETS` (or ../shared/assets) has them, so the
    data checks judge the environment rather than the procedural stand-ins."""
    data = root / "data"
    argv = [sys.executable, "-m", "decaenv", "selftest", "--make-assets", str(data), "--small"]
    shared = Path(os.environ.get("DECAENV_TEST_ASSETS", REPO.parent / "shared" / "assets")) / "deca-data"
    if (shared / "head_template.obj").is_file():
        argv += ["--topology-from", str(shared)]
    out = _run(argv)
    if out.returncode != 0:
        raise SystemExit(f"cannot make the synthetic data dir: {_last_error(out.stderr)}")
    return data


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="only the two quick cells")
    parser.add_argument("--cells", nargs="*", help="cell names to run (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="cells built in parallel")
    parser.add_argument(
        "--out", type=Path, default=None, help="Markdown table (default: docs/compatibility.md; none with --smoke)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write all results as JSON too")
    parser.add_argument("--wheelhouse", type=Path, default=None, help="install offline from this folder only")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="judge this existing synthetic data dir (only read) instead of making one (the test suite passes "
        "its session's: a second 276 MB checkpoint + FLAME write saved)",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        default=None,
        metavar="JSON",
        help="keep the other cells' results from this earlier --json output (re-run a few cells)",
    )
    parser.add_argument(
        "--download-wheels",
        type=Path,
        default=None,
        metavar="DIR",
        help="fill DIR with the smoke cells' wheels and exit",
    )
    args = parser.parse_args(argv)
    if args.download_wheels is not None:
        download_wheels(args.download_wheels)
        return 0
    global WHEELHOUSE
    WHEELHOUSE = args.wheelhouse
    cells = smoke_cells() if args.smoke else all_cells()
    if args.cells:
        wanted = set(args.cells)
        pool = smoke_cells() if args.smoke else all_cells()  # a name means the full cell unless --smoke
        cells = [c for c in pool if c.name in wanted]
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="decaenv-matrix-") as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(tmp / "dist")
        data_dir = args.data_dir.resolve() if args.data_dir else make_data_dir(tmp)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(run_cell, cell, wheel, data_dir): cell for cell in cells}
            results = []
            for future in concurrent.futures.as_completed(futures):
                r = future.result()
                results.append(r)
                print(
                    f"{r.cell:<40} {_cell_status(r):<16} {r.seconds:6.0f} s  {r.verdict or r.install_error}", flush=True
                )
    if args.merge is not None and args.merge.is_file():
        fresh = {r.cell for r in results}
        results += [CellResult(**d) for d in json.loads(args.merge.read_text()) if d["cell"] not in fresh]
        cells = [c for c in all_cells() if c.name in {r.cell for r in results}]
    order = {c.name: i for i, c in enumerate(cells)}
    results.sort(key=lambda r: order.get(r.cell, len(order)))
    seconds = sum(r.seconds for r in results)
    out = args.out or (None if args.smoke else REPO / "docs" / "compatibility.md")
    if out is not None:
        write_markdown(results, out, seconds)
        print(f"wrote {out}")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if all(r.installed or r.install_error for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

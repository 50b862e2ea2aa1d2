"""`decaenv doctor` cold and warm, side by side with `python -m torch.utils.collect_env` and `import torch`.

cold: no cached results (a fresh DECAENV_HOME per run): every probe runs (torch is imported once, in the probe
      worker, concurrently with the numpy, face_alignment and data probes). `--no-build`: the build probe
      compiles for ~30-60 s and has its own cached verdict; `--with-build` adds one cold run including it.
warm: the same command again with the results cache filled: only file stats and the cheap uncached checks.
Targets: warm <= 0.3 s; cold <= (`python -c "import torch"` + 0.5 s).

Run:
    .venv/bin/python bench/doctor.py [--repeat 5] [--data-dir DIR] [--with-build]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summarize

WARM_TARGET_S = 0.3
COLD_MARGIN_S = 0.5


CPU: Dict[str, List[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: Sequence[str], env: Dict[str, str], label: str = "") -> float:
    """Wall seconds of one run (any exit status: the doctor exits 1 when data files are missing); the CPU
    seconds of the process tree go to CPU[label] (a figure a busy machine disturbs much less than wall time)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if label:
        CPU.setdefault(label, []).append(_children_cpu() - cpu)
    if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def sample(
    argv: Sequence[str], repeat: int, env: Dict[str, str], fresh_home: bool = False, warmup: int = 1, label: str = ""
) -> List[float]:
    """`repeat` timings; with `fresh_home`, each run gets an empty DECAENV_HOME (no cached results)."""
    times = []
    for i in range(warmup + repeat):
        run_env = dict(env)
        home = None
        if fresh_home:
            home = tempfile.mkdtemp(prefix="decaenv-bench-home-")
            run_env["DECAENV_HOME"] = home
        try:
            elapsed = timed(argv, run_env, label if i >= warmup else "")
        finally:
            if home:
                shutil.rmtree(home, ignore_errors=True)
        if i >= warmup:
            times.append(elapsed)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=None, help="data dir to check (default: an empty one)")
    parser.add_argument("--with-build", action="store_true", help="also time one cold run including the build")
    args = parser.parse_args()
    py = sys.executable
    script = shutil.which("decaenv", path=str(Path(py).parent)) or shutil.which("decaenv")
    work = Path(tempfile.mkdtemp(prefix="decaenv-bench-"))
    data_dir: Path = args.data_dir or (work / "data")
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(work / "torch_extensions"))
    doctor = [script, "--data-dir", str(data_dir), "doctor", "--no-build"]
    print(
        f"python {sys.version.split()[0]}; {script}; data dir {data_dir}; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    try:
        rows = {
            "import_torch": summarize(
                'python -c "import torch"', sample([py, "-c", "import torch"], args.repeat, env, label="import_torch")
            ),
            "collect_env": summarize(
                "python -m torch.utils.collect_env",
                sample([py, "-m", "torch.utils.collect_env"], args.repeat, env, label="collect_env"),
            ),
            "help": summarize(
                "decaenv --help (CLI start-up)", sample([script, "--help"], args.repeat, env, label="help")
            ),
            "cold": summarize(
                "decaenv doctor --no-build (cold)", sample(doctor, args.repeat, env, fresh_home=True, label="cold")
            ),
        }
        warm_env = dict(env, DECAENV_HOME=str(work / "home"))
        timed(doctor, warm_env)  # fill the cache
        rows["warm"] = summarize(
            "decaenv doctor --no-build (warm)", sample(doctor, args.repeat, warm_env, label="warm")
        )
        full = [script, "--data-dir", str(data_dir), "doctor"]
        if args.with_build:
            build_home = dict(env, DECAENV_HOME=str(work / "build-home"))
            rows["cold_build"] = summarize("decaenv doctor (cold, with the build probe)", [timed(full, build_home)])
            rows["warm_build"] = summarize(
                "decaenv doctor (warm, build verdict cached)", sample(full, args.repeat, build_home, warmup=0)
            )
        report(rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(rows: Dict[str, Dict[str, float]]) -> None:
    print("  CPU seconds (user+sys of the whole process tree, median):")
    for label, values in CPU.items():
        print(f"    {label:<14} {statistics.median(values):6.3f} s")
    torch_s, collect, help_s = rows["import_torch"]["median"], rows["collect_env"]["median"], rows["help"]["median"]
    cold, warm = rows["cold"]["median"], rows["warm"]["median"]
    print(f"  cold doctor / collect_env = {cold / collect:.2f}x; warm doctor / collect_env = {warm / collect:.2f}x")
    print(
        f"  cold doctor - import torch = {cold - torch_s:+.2f} s; warm doctor - decaenv --help = "
        f"{warm - help_s:+.3f} s (the doctor's own warm cost)"
    )
    cold_ok = cold <= torch_s + COLD_MARGIN_S
    warm_ok = warm <= WARM_TARGET_S
    print(f"  target warm <= {WARM_TARGET_S:.1f} s: {'met' if warm_ok else 'MISSED'} ({warm:.3f} s)")
    print(
        f"  target cold <= import torch + {COLD_MARGIN_S:.1f} s = {torch_s + COLD_MARGIN_S:.2f} s: "
        f"{'met' if cold_ok else 'MISSED'} ({cold:.2f} s)"
    )
    spread = statistics.pstdev([rows["warm"]["min"], rows["warm"]["max"]])
    print(f"  (warm min {rows['warm']['min']:.3f} s, max {rows['warm']['max']:.3f} s, spread {spread:.3f} s)")


if __name__ == "__main__":
    sys.exit(main())

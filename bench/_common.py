"""Helpers shared by the benchmarks: timing of subprocesses and a uniform report format."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from typing import Dict, List, Sequence


def time_command(argv: Sequence[str], repeat: int, env: Dict[str, str] = None, warmup: int = 1) -> List[float]:
    """Wall-clock seconds of `repeat` runs of a command (after `warmup` untimed runs); fails loudly."""
    full_env = dict(os.environ, **(env or {}))
    for _ in range(warmup):
        subprocess.run(argv, check=True, capture_output=True, env=full_env)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=full_env)
        times.append(time.perf_counter() - start)
    return times


def summarize(name: str, times: List[float]) -> Dict[str, float]:
    """Median, min and max of a sample, printed as one row."""
    row = {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}
    print(
        f"  {name:<40} median {row['median'] * 1000:8.1f} ms   min {row['min'] * 1000:8.1f} ms   "
        f"max {row['max'] * 1000:8.1f} ms   (n={row['n']})"
    )
    return row


#: The CPU flags that decide the networks' and the detector's speed, printed by every benchmark.
SPEED_FLAGS = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"}


def kernel_summary() -> str:
    """Whether decaenv's compiled CPU kernels are in use here (loading them as a run does): the rasterizer, the
    crop warp, PNG unfiltering and MTCNN's box and pooling kernels. Without them (not built, or built from other
    sources, which an upgrade or a source edit makes stale) a benchmark times the slower fallbacks, and says so."""
    from decaenv.runtime.rasterizer import extension

    variant = extension.load()
    if variant:
        return f"compiled kernels: the {variant} extension"
    return (
        f"compiled kernels NOT in use ({extension.load_error()}): these figures are of the slower fallbacks, "
        "not decaenv's usual speed"
    )


def cpu_flag_summary() -> str:
    """The `SPEED_FLAGS` this CPU has, space-separated ("unknown" where none can be read)."""
    from decaenv.runtime.hardware import cpu_flags

    return " ".join(sorted(cpu_flags() & SPEED_FLAGS)) or "unknown"


def synthetic_deca(device: str = "cpu", prefix: str = "decaenv-bench-"):
    """DECA with synthetic weights (same shapes and cost as DECA's) from a temporary data dir, pure-torch
    rasterizer (the networks are what the callers time)."""
    import tempfile
    from pathlib import Path

    from decaenv.runtime.deca import DECA
    from decaenv.synthetic import make_assets

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        make_assets(Path(tmp), seed=0, public_dir=None, with_optimizer=False)
        return DECA(tmp, device=device, rasterizer="torch")


def process_tree_cpu() -> Dict[str, float]:
    """CPU seconds (user + system) of this process and of its live child processes (an input pool's workers),
    from Linux's /proc: {"self": s, "children": s}; {} where /proc is not there. Children that already exited
    are not counted (their time is in `resource.RUSAGE_CHILDREN`, and only once they are waited for)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def cpu(pid: str) -> float:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of stat(5))

    try:
        own = cpu("self")
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return {}
    children = set()
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as fh:
                children.update(fh.read().split())
        except OSError:  # a thread that ended between the listing and the read (a run's writer, a pool's)
            continue
    total = 0.0
    for pid in children:
        try:
            total += cpu(pid)
        except OSError:  # exited meanwhile
            continue
    return {"self": own, "children": total}


def machine_idle() -> List[int]:
    """[idle + iowait, all] jiffies of the whole machine (/proc/stat's first line), [] where there is none: the
    share of CPU time nobody used between two readings is (idle1 - idle0) / (all1 - all0)."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return []
    return [values[3] + values[4], sum(values)]


def add_mtcnn_weights(data_dir: str) -> None:
    """Link the MTCNN weights of the user's data dir (or an installed facenet-pytorch) into a synthetic one.

    The synthetic data dir holds random DECA weights only; the detector needs the real MTCNN files, which
    `decaenv fetch mtcnn` (or `fetch --from facenet_pytorch-2.6.0-py3-none-any.whl`) puts in the default data dir.
    Exits with a one-line message when there are none.
    """
    from pathlib import Path

    from decaenv.runtime.detectors.mtcnn import DATA_SUBDIR, FETCH_HINT, weights_dir

    target = Path(data_dir) / DATA_SUBDIR
    if weights_dir(Path(data_dir)) == target:
        return
    found = weights_dir()
    if found is None:
        raise SystemExit(f"bench: no MTCNN weights in the default data dir: {FETCH_HINT}, then rerun")
    target.symlink_to(found.resolve(), target_is_directory=True)

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


def cpu_flag_summary() -> str:
    """The CPU flags that decide the networks' speed (AVX2, AVX-512, its BF16, AMX), space-separated."""
    from decaenv.runtime.hardware import cpu_flags

    return " ".join(sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}))


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

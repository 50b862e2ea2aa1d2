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

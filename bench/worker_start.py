"""Start and stop of the input worker processes (`--input-workers processes`), side by side in one process:

- a run whose model is loaded before it starts (`Reconstructor.load()`, then `run`: the workers start on the
  first batch, after the networks) against a plain run (`run` loads the model and starts the workers first,
  so they start while the networks load); each in a fresh interpreter, like a command-line run, the figure
  being load + run (the networks' imports included) on the same 16 photos;
- `close()` of the pool (its workers exit without the interpreter's teardown) against the same shutdown of a
  bare spawn pool whose workers import torch and exit normally.

    .venv/bin/python bench/worker_start.py [--rounds 5] [--workers 1] [--data-dir DIR]

Synthetic DECA weights (generated once into a temporary folder unless --data-dir), MTCNN, `--save codes`,
batch 8, CPU. With --workers below the CPU count the workers' start has a core of its own to run on while
the networks load (as on a GPU machine); with every core taken, the two only share them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _common import cpu_flag_summary

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _torch_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _pid() -> int:
    return os.getpid()


def _bare_pool_close(workers: int) -> float:
    """Seconds `shutdown` waits for spawn workers that imported torch and end like any interpreter."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_torch_worker)
    [f.result() for f in [pool.submit(_pid) for _ in range(workers)]]
    start = time.perf_counter()
    pool.shutdown(wait=True)
    return time.perf_counter() - start


def _child(work: Path, data_dir: str, workers: int, preload: bool) -> None:
    """One lazy reconstructor's run in this (fresh) interpreter: prints load + run and close seconds."""
    from decaenv.paths import DataDir
    from decaenv.runtime.pipeline import Reconstructor
    from decaenv.runtime.run_types import ReconstructOptions

    options = ReconstructOptions(
        inputs=[work / "images"],
        out_dir=work / "out",
        data_dir=DataDir(Path(data_dir), "flag"),
        device="cpu",
        batch_size=8,
        detector="mtcnn",
        save=("codes",),
        input_workers=f"processes:{workers}",
    )
    shutil.rmtree(options.out_dir, ignore_errors=True)
    runner = Reconstructor(options, lazy=True)
    start = time.perf_counter()
    if preload:
        runner.load()
    summary = runner.run()
    ran = time.perf_counter() - start
    assert summary.count("ok") == 16, summary.counts
    start = time.perf_counter()
    runner.close()
    print(json.dumps({"ran": ran, "closed": time.perf_counter() - start}))


def _run(work: Path, data_dir: str, workers: int, preload: bool):
    """(load + run seconds, close seconds) of a run in a child interpreter."""
    argv = [sys.executable, __file__, "--child", str(work), "--data-dir", data_dir, "--workers", str(workers)]
    done = subprocess.run(argv + (["--preload"] if preload else []), capture_output=True, text=True, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return row["ran"], row["closed"]


def main() -> int:
    from reconstruct import _write_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--data-dir", help="DECA data dir (default: synthetic, built once)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--preload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child), args.data_dir, args.workers, args.preload)
        return 0
    print(f"CPU flags: {cpu_flag_summary()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    work = Path(tempfile.mkdtemp(prefix="decaenv-bench-"))
    try:
        if not args.data_dir:
            from decaenv.synthetic import make_assets

            args.data_dir = str(make_assets(work / "data", seed=0, with_optimizer=False).data_dir)
        (work / "images").mkdir()
        _write_images(work / "images", 16)
        rows = {"loaded first": [], "workers first": [], "bare": []}
        closes = {"loaded first": [], "workers first": []}
        for _ in range(args.rounds):
            for name, preload in (("loaded first", True), ("workers first", False)):
                ran, closed = _run(work, args.data_dir, args.workers, preload)
                rows[name].append(ran)
                closes[name].append(closed)
            rows["bare"].append(_bare_pool_close(args.workers))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    before, now = rows["loaded first"], rows["workers first"]
    ratio = statistics.median(b / a for a, b in zip(before, now))
    print(f"  {args.workers} worker process(es), 16 photos, median of {args.rounds} rounds:")
    print(
        f"  load + run: workers started after the networks {statistics.median(before):.2f} s, "
        f"while they load {statistics.median(now):.2f} s (ratio {ratio:.2f}x)"
    )
    close, bare = statistics.median(closes["workers first"] + closes["loaded first"]), statistics.median(rows["bare"])
    print(f"  close(): decaenv's workers {close:.3f} s, a bare spawn pool with torch {bare:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

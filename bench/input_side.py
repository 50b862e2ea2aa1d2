"""Benchmark of the input side alone (read + decode + MTCNN + crop, what feeds the networks): images/s with the
items prepared on N threads against N worker processes, side by side in one run, and the main process's CPU
time per image (the part that competes with the thread that feeds a GPU).

    .venv/bin/python bench/input_side.py                       # 1, 2 and (CPUs - 1) workers
    .venv/bin/python bench/input_side.py --workers 15 --count 256
    .venv/bin/python bench/input_side.py --workers 2 --frames 1080x1920     # also 1080p video frames

Threads share one interpreter lock: where preparing an item holds it a fraction f of its time, N threads
prepare at most 1/f items in the time one takes, however many cores there are; processes have no such
ceiling. The pool's start (process spawn) with a warm-up quarter-round is timed apart. Images: 512×512 PNG variations of
`skimage.data.astronaut()` unless --images is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_flag_summary, kernel_summary


def _photos(folder: Path, count: int, images: str) -> list:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reconstruct import _write_images

    from decaenv.runtime.inputs import expand_inputs

    if images:
        items = list(expand_inputs([Path(images)]))
    else:
        _write_images(folder, min(count, 16))
        items = list(expand_inputs([folder]))
    return (items * (count // len(items) + 1))[:count]


def _cpu_seconds() -> float:
    """CPU seconds of this process (every thread of it), not of its children."""
    usage = os.times()
    return usage.user + usage.system


def _measure(label, make_pool, run, items, rounds):
    start = time.perf_counter()
    pool = make_pool()
    try:
        run(pool, items[: max(1, len(items) // 4)])  # warm-up: the workers start (processes: spawn), caches fill
        started = time.perf_counter() - start
        rates, cpu = [], []
        for _ in range(rounds):
            t0, c0 = time.perf_counter(), _cpu_seconds()
            done = run(pool, items)
            rates.append(len(items) / (time.perf_counter() - t0))
            cpu.append((_cpu_seconds() - c0) / len(items))
            assert all(p.error == "" for p in done), [p.error for p in done if p.error][:1]
    finally:
        if pool is not None:
            pool.close()
    row = {"label": label, "rate": statistics.median(rates), "cpu_ms": statistics.median(cpu) * 1e3, "start": started}
    print(
        f"  {label:<14} {row['rate']:8.1f} images/s   main-process CPU {row['cpu_ms']:6.1f} ms/image   "
        f"start + warm-up {started:5.2f} s",
        flush=True,
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=64, help="items per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="", help="comma list (default: 1, 2 and CPUs - 1)")
    parser.add_argument("--images", default="", help="a folder of photos instead of the astronaut variations")
    parser.add_argument("--data-dir", default=None, help="data dir holding mtcnn/ (default: the resolved one)")
    parser.add_argument("--frames", default="", help="also video frames of this size (e.g. 1080x1920) to processes")
    args = parser.parse_args()

    import torch

    from decaenv.runtime.input_pool import InputPool
    from decaenv.runtime.input_procs import Preparer, PrepareSpec, ProcessInputPool
    from decaenv.runtime.overlap import usable_cpus

    cpus = usable_cpus()
    counts = sorted({int(w) for w in args.workers.split(",") if w} or {1, 2, max(1, cpus - 1)})
    print(
        f"torch {torch.__version__}, {cpus} CPUs ({cpu_flag_summary()}), load {os.getloadavg()[0]:.1f}; "
        f"{kernel_summary()}"
    )
    spec = PrepareSpec("mtcnn", args.data_dir)
    prepare = Preparer(spec)
    with tempfile.TemporaryDirectory() as tmp:
        items = _photos(Path(tmp), args.count, args.images)
        print(f"{len(items)} items per round, {args.rounds} rounds; median of the rounds:")
        rows = []
        for workers in counts:
            torch.set_num_threads(1)  # the inline case: one item at a time on one torch thread

            def threads(pool, batch):
                return pool.map(prepare, batch) if pool is not None else [prepare(i) for i in batch]

            rows.append(
                _measure(
                    f"{workers} thread{'s' if workers > 1 else ''}",
                    lambda w=workers: InputPool(w) if w > 1 else None,
                    threads,
                    items,
                    args.rounds,
                )
            )
            proc = _measure(
                f"{workers} process{'es' if workers > 1 else ''}",
                lambda w=workers: ProcessInputPool(w, spec),
                lambda pool, batch: pool.map(batch),
                items,
                args.rounds,
            )
            rows.append(proc)
            print(
                f"    processes / threads at {workers}: {proc['rate'] / rows[-2]['rate']:.2f}× the images/s, "
                f"{proc['cpu_ms'] / rows[-2]['cpu_ms']:.2f}× the main process's CPU per image"
            )
    if args.frames:
        _measure_frames(args, max(counts))
    return 0


def _measure_frames(args, workers: int) -> None:
    """Video frames (decoded in the main process) sent to the worker processes pickled against through shared
    frame slots, `--frames HxW` each, cropping only (`--iscrop false`: the transfer is what differs)."""
    from pathlib import Path

    import numpy as np

    from decaenv.runtime.input_procs import PrepareSpec, ProcessInputPool
    from decaenv.runtime.inputs import Item

    height, width = (int(v) for v in args.frames.lower().split("x"))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    items = [Item(f"clip_frame{k:04d}", Path("clip.mp4"), k, np.roll(base, k, axis=1)) for k in range(args.count)]
    print(f"\n{args.count} video frames of {width}x{height} per round, {workers} worker processes, crop only:")
    spec = PrepareSpec("", None)
    rows = {}
    for label, slots in (("pickled frames", 0), ("frame slots", 4 * args.count)):
        rows[label] = _measure(
            label, lambda s=slots: ProcessInputPool(workers, spec, slots=s), lambda p, b: p.map(b), items, args.rounds
        )
    before, now = rows["pickled frames"], rows["frame slots"]
    print(
        f"    frame slots / pickled: {now['rate'] / before['rate']:.2f}× the frames/s, "
        f"{now['cpu_ms'] / before['cpu_ms']:.2f}× the main process's CPU per frame"
    )


if __name__ == "__main__":
    sys.exit(main())

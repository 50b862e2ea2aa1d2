"""Benchmark of the main process's share of a run beside an accelerator: the whole `decaenv reconstruct` pipeline
with the three networks replaced by instant stand-ins (zeros of the right shapes), so what is left is what the
main process spends per item — sending items to the input workers, receiving crops, batching, writing. One
interpreter does that work, so 1000 / (its CPU-ms per item) is the most items per second it could feed a GPU,
however fast the GPU and however many input workers (the issue-16 GPU targets are 500 and 1,500 images/s).

    .venv/bin/python bench/host_side.py                        # --save table, then codes; 2 workers
    .venv/bin/python bench/host_side.py --workers 8 --count 512 --batch 64

Compared side by side in one process, rounds interleaved: worker processes handing crops back through shared
slots in messages of several items (now), the same processes pickling every crop back one item per message
(before), the first with the main process on all torch threads instead of one (a run beside an accelerator
uses one: `overlap.main_torch_threads`), and threads. Images: 512×512 PNG variations of
`skimage.data.astronaut()`, MTCNN, synthetic weights.
Then the writing of `--save codes` files alone (`<name>_codes.npz` + `.json`, committed atomically): items per
second on 1, 2 and 4 threads (a run beside an accelerator writes them on `overlap.WRITE_WORKERS`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import add_mtcnn_weights, cpu_flag_summary, kernel_summary

CONFIGS = {  # label: (--input-workers kind, ProcessInputPool keywords, the main process's torch threads; 0: all)
    "processes, shared slots": ("processes", {}, 1),
    "processes, pickled (before)": ("processes", {"slots": 0, "per_message": 1}, 1),
    "processes, all torch threads": ("processes", {}, 0),
    "threads": ("threads", None, 1),
}


class _NullNetworks:
    """Stand-ins for the fast graphs: instant outputs of the encoders' shapes."""

    precision = "fp32"
    graph = "instant stand-ins"  # (not a graph whose encoders run side by side: `encoder_pair.PAIR_GRAPHS`)

    def E_flame(self, images):
        import torch

        return torch.zeros(images.shape[0], 236)

    def E_detail(self, images):
        import torch

        return torch.zeros(images.shape[0], 128)


def _runner_class(pools: dict):
    """A Reconstructor whose worker processes are the benchmark's (kept between rounds, one pool per config)."""
    from decaenv.runtime.input_procs import ProcessInputPool
    from decaenv.runtime.pipeline import Reconstructor

    class Runner(Reconstructor):
        pool_options: dict = {}
        main_threads = 1  # what a run beside an accelerator uses (`overlap.main_torch_threads`); 0: all

        def _torch_threads(self):  # the networks are instant stand-ins on the CPU: apply the accelerator's rule
            from decaenv.runtime.overlap import torch_threads

            return torch_threads(self.main_threads or os.cpu_count() or 1)

        def _process_pool(self, workers, spec):
            key = (workers, spec, tuple(sorted(self.pool_options.items())))
            if key not in pools:
                slots = self.pool_options.get("slots", 4 * self.options.batch_size + workers)
                pools[key] = ProcessInputPool(workers, spec, **{**self.pool_options, "slots": slots})
            self._processes = pools[key]  # (a run closes pools that are not its reconstructor's own)
            return pools[key]

        def close(self) -> None:  # the pools outlive the runners
            pass

    return Runner


def _photos(folder: Path, count: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reconstruct import _write_images

    _write_images(folder, min(count, 16))
    made = sorted(folder.iterdir())
    for k in range(len(made), count):
        os.link(made[k % len(made)], folder / f"copy{k:05d}.png")


def _one_run(runner_cls, base, args, images: Path, out: Path, label: str):
    from decaenv.paths import DataDir
    from decaenv.runtime.run_types import ReconstructOptions

    kind, pool_options, threads = CONFIGS[label]
    options = ReconstructOptions(
        inputs=[images],
        out_dir=out,
        data_dir=DataDir(Path(args.data_dir), "flag"),
        batch_size=args.batch,
        detector="mtcnn",
        save=args.save.split(","),
        input_workers=f"{kind}:{args.workers}",
    )
    runner = runner_cls(options, deca=base.deca, detector_choice=base.detector)
    runner.pool_options, runner.main_threads = pool_options or {}, threads
    usage, start = os.times(), time.perf_counter()
    summary = runner.run()
    seconds = time.perf_counter() - start
    cpu = sum(os.times()[:2]) - sum(usage[:2])  # this process's user + system, not the workers'
    assert summary.count("ok") == args.count, summary.counts
    shutil.rmtree(out)
    return args.count / seconds, 1e3 * cpu / args.count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save", default="table,codes", help="comma list of --save values, each measured apart")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--count", type=int, default=256, help="images per run")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", help="DECA data dir (default: synthetic)")
    args = parser.parse_args()

    print(
        f"{os.cpu_count()} CPUs ({cpu_flag_summary()}), load {os.getloadavg()[0]:.1f}; {args.workers} input workers; "
        f"{kernel_summary()}"
    )
    work = Path(tempfile.mkdtemp(prefix="decaenv-bench-host-"))
    pools: dict = {}
    try:
        return _measure(args, work, pools)
    finally:
        for pool in pools.values():
            pool.close()
        shutil.rmtree(work, ignore_errors=True)


def _measure(args, work: Path, pools: dict) -> int:
    from decaenv.paths import DataDir
    from decaenv.runtime.pipeline import Reconstructor
    from decaenv.runtime.run_types import ReconstructOptions

    if not args.data_dir:
        from decaenv.synthetic import make_assets

        args.data_dir = str(make_assets(work / "data", seed=0, with_optimizer=False).data_dir)
        add_mtcnn_weights(args.data_dir)
    images = work / "images"
    images.mkdir()
    _photos(images, args.count)
    base_options = ReconstructOptions(
        inputs=[images], out_dir=work / "base", data_dir=DataDir(Path(args.data_dir), "flag"), detector="mtcnn"
    )
    base = Reconstructor(base_options)
    base.load()
    base.deca.fast = _NullNetworks()
    runner_cls = _runner_class(pools)
    for save in args.save.split(","):
        args.save = save
        print(f"\n--save {save}, batch {args.batch}, {args.count} images per run; median of {args.rounds} rounds")
        for label in CONFIGS:  # warm-up: pools start, caches fill
            _one_run(runner_cls, base, args, images, work / "out", label)
        rows: dict = {label: [] for label in CONFIGS}
        for _ in range(args.rounds):
            for label in CONFIGS:
                rows[label].append(_one_run(runner_cls, base, args, images, work / "out", label))
        before = statistics.median(cpu for _, cpu in rows["processes, pickled (before)"])
        for label, runs in rows.items():
            rate, cpu = statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs)
            ceiling = f"ceiling {1000 / cpu:6.0f} images/s" if label != "threads" else "(the input side on its threads)"
            print(
                f"  {label:<28} {rate:7.1f} images/s here   main process {cpu:5.2f} CPU-ms/image "
                f"({cpu / before:4.2f}x before)   {ceiling}"
            )
    _measure_writing(base.deca, work / "written", args.rounds)
    return 0


def _measure_writing(deca, out: Path, rounds: int, items: int = 512) -> None:
    """Items' `--save codes` files written per second by 1, 2 and 4 (and WRITE_WORKERS) threads, interleaved."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    import numpy as np
    import torch

    from decaenv.runtime.export import item_files
    from decaenv.runtime.overlap import WRITE_WORKERS
    from decaenv.runtime.writers import OutputSet, write_item

    sizes = {"shape": 100, "tex": 50, "exp": 50, "pose": 6, "cam": 3, "detail": 128}
    codedict = {k: torch.randn(8, n) for k, n in sizes.items()}
    codedict["light"] = torch.randn(8, 9, 3)
    ctx = SimpleNamespace(
        name="", source="photo.png", frame=None, crop_source="detector:mtcnn", box=(1.0, 2.0, 3.0, 4.0),
        tform=np.eye(3), original_size=(512, 512),
    )  # fmt: skip

    def write(k: int) -> None:
        name = f"item{k:05d}"
        files = item_files(deca, ("codes",), codedict, {}, None, None, None, k % 8, ctx)
        write_item(OutputSet(out, name), files)

    rates: dict = {n: [] for n in sorted({1, 2, 4, WRITE_WORKERS})}
    for _ in range(rounds):
        for threads in rates:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            with ThreadPoolExecutor(threads) as pool:
                start = time.perf_counter()
                list(pool.map(write, range(items)))
                rates[threads].append(items / (time.perf_counter() - start))
    one = statistics.median(rates[1])
    print(f"\n--save codes files alone ({items} items, median of {rounds} rounds)")
    for threads, runs in rates.items():
        rate = statistics.median(runs)
        label = f"{threads} writing thread{'s' if threads > 1 else ' '}"
        print(f"  {label}   {rate:7.0f} items/s   ({rate / one:4.2f}x one)")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

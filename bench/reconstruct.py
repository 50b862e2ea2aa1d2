"""Benchmark of `decaenv reconstruct`: images/s by batch size, time per stage, peak memory, and the bare
network forwards (2× ResNet-50 + the detail decoder) measured in the same process as the floor.

    .venv/bin/python bench/reconstruct.py                      # CPU, batch 1 and 8, synthetic weights
    .venv/bin/python bench/reconstruct.py --device cuda --batch-sizes 1,8,32

Each batch size runs in its own subprocess (so peak RSS is that configuration's). Targets (issue 6): at
batch 8, everything that is not a network forward ≤ 30 % of the model time (encode + FLAME + detail +
render), and peak RSS ≤ 3 GB. Targets (issue 16), whole run per image against the eager-fp32 floor of the
three networks measured in the same run: `--save codes` ≤ 0.8× (fp32) / ≤ 0.4× (`--precision bf16`),
`--save vis` ≤ 1.0×. Two floors: the eager forwards after each run, with glibc's default heap (as eager DECA
runs: it maps and zeroes fresh pages for many of its activations, how many depends on what the process allocated
before, and that moved this floor by up to ~20 ms per image), and, after the last run, the same forwards with
every freed block kept (`decaenv.runtime.heap.never_map`: no page faults, the floor of their arithmetic alone,
the conservative one). Both are timed on the run's own crops, channels-last where the fast graphs run (eager torch
then runs its convolutions channels-last too, ~15 % faster than on the contiguous tensors DECA feeds them: a
stricter floor). On a CPU a third floor checks the first: DECA's three networks alone in a fresh process, built
and run as DECA's demo runs them, contiguous inputs included (`bench/_deca_floor.py`; `--deca-src DECA` runs
DECA's own network code from that checkout), on the last run's crops. The verdicts are given against all three;
the runs themselves take almost no page faults.
Weights are synthetic (same shapes and cost as DECA's); the images are variations of
`skimage.data.astronaut()` unless --images is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import add_mtcnn_weights, cpu_flag_summary, kernel_summary, machine_idle, process_tree_cpu

#: Fresh processes timing DECA's networks alone (the best one is the floor: see `_deca_process_floor`).
FLOOR_PROCESSES = 3
MODEL_STAGES = ("encode", "flame", "detail", "render")
ALL_STAGES = ("read", "detect", "crop", "encode", "flame", "detail", "render", "save")


def _write_images(folder: Path, count: int) -> None:
    import numpy as np
    import skimage.data
    from PIL import Image

    base = skimage.data.astronaut()
    for k in range(count):
        image = np.roll(base, 7 * k, axis=1)
        if k % 2:
            image = image[:, ::-1]
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"img{k:03d}.png")


def _bare_forwards(deca, codedict) -> float:
    """Seconds of the bare network forwards (E_flame, E_detail, D_detail) on one batch's crops."""
    import torch

    from decaenv.runtime.deca import ieee_fp32
    from decaenv.runtime.decoders import detail_latent

    sync = torch.cuda.synchronize if deca.device.type == "cuda" else (lambda: None)
    images = codedict["images"]
    latent = detail_latent(codedict["pose"], codedict["exp"], codedict["detail"])
    with torch.inference_mode(), ieee_fp32(deca.device):  # the same precision as the pipeline
        sync()
        start = time.perf_counter()
        deca.E_flame(images)
        deca.E_detail(images)
        deca.D_detail(latent)
        sync()
    return time.perf_counter() - start


def _timed_runner(base):
    """A Reconstructor that keeps each batch's codes, so the bare forwards (the floor) can be timed on the
    same crops and batch sizes right after each run — not inside it, where the overlapped input and
    output threads would slow the floor down too."""

    class Timed(base):
        floor_seconds = 0.0
        batches: list = []
        kept: list = []

        def run_model(self, prepared):
            result = super().run_model(prepared)
            self.batches.append(result["codedict"])
            return result

        def time_floor(self, batches=None) -> float:
            """Seconds of the bare forwards on `batches` (default: this run's, which are then moved to `kept`)."""
            if batches is None:
                batches, self.kept, self.batches = self.batches, self.batches, []
            return sum(_bare_forwards(self.deca, codedict) for codedict in batches)

    return Timed


def child(args) -> None:
    """One configuration in a scratch output folder, removed afterwards (see `_child`)."""
    out = Path(tempfile.mkdtemp(prefix="decaenv-bench-out-"))
    try:
        _child(args, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _cpu_split(before: dict, after: dict, idle_before: list, idle_after: list) -> dict:
    """CPU seconds of one run: this process's, its input workers', and the machine's idle share (Linux)."""
    split = {k: after[k] - before[k] for k in ("self", "children") if k in before and k in after}
    if idle_before and idle_after and idle_after[1] > idle_before[1]:
        split["idle"] = (idle_after[0] - idle_before[0]) / (idle_after[1] - idle_before[1])
    return split


def _child(args, out: Path) -> None:
    """One configuration: load, warm up, reconstruct the images, time the floor; print JSON."""
    import resource

    import torch

    from decaenv.paths import DataDir
    from decaenv.runtime.heap import never_map
    from decaenv.runtime.pipeline import Reconstructor
    from decaenv.runtime.run_types import ReconstructOptions
    from decaenv.runtime.timing import StageTimer

    images = sorted(Path(args.images).iterdir())
    options = ReconstructOptions(
        inputs=[Path(args.images)],
        out_dir=out,
        data_dir=DataDir(Path(args.data_dir).resolve(), "flag"),
        device=args.device,
        batch_size=args.batch,
        detector=args.detector,
        rasterizer=args.rasterizer,
        save=args.save.split(","),
        render_orig=args.render_orig,
        precision=args.precision,
        graph=args.graph,
        overlap={"auto": None, "on": True, "off": False}[args.overlap],
        input_workers=args.input_workers,
    )
    start = time.perf_counter()
    runner = _timed_runner(Reconstructor)(options)
    load = time.perf_counter() - start
    warm = ReconstructOptions(**{**options.__dict__, "inputs": images[: args.batch], "out_dir": out / "warm"})
    warm_runner = Reconstructor(warm, deca=runner.deca, detector_choice=runner.detector)
    warm_runner.run()
    warm_runner.close()  # (its input worker processes, if any: the timed runner starts its own)
    best, floors, pairs, faults = None, [], [], []
    for _ in range(args.repeat):  # best of: the machine may be shared
        runner.timer = StageTimer(str(runner.deca.device))
        runner.deca.timer = runner.timer
        runner.batches = []
        cpu0, idle0 = process_tree_cpu(), machine_idle()
        start = time.perf_counter()
        summary = runner.run()
        total = time.perf_counter() - start
        cpu = _cpu_split(cpu0, process_tree_cpu(), idle0, machine_idle())
        faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        floor = runner.time_floor()  # alternating run, floor, run, floor: both see the same machine load
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0)
        floors.append(floor)
        pairs.append(total / floor if floor > 0 else float("inf"))
        last_batches = runner.kept
        model = sum(runner.timer.seconds.get(s, 0.0) for s in MODEL_STAGES)
        if best is None or total < best[1]:
            best = (model, total, summary, dict(runner.timer.seconds), cpu)
    _, total, summary, stages, cpu = best
    floor_seconds = min(floors)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (the runs' and the floors')
    fault_free = None  # the same forwards on the last run's crops, the heap keeping every freed block
    if runner.deca.device.type == "cpu" and never_map():
        fault_free = min(runner.time_floor(last_batches) for _ in range(4))  # (the first call grows the heap)
    n = summary.count("ok")
    result = {
        "batch": args.batch,
        "images": n,
        "failed": summary.count("failed"),
        "seconds": total,
        "load_seconds": load,
        "stages": stages,
        "cpu": cpu,
        "floor_per_image": floor_seconds / max(1, n),
        "floor_page_faults_per_image": faults[floors.index(floor_seconds)] / max(1, n),
        "fault_free_floor_per_image": None if fault_free is None else fault_free / max(1, n),
        "repeat": args.repeat,
        "paired_ratios": pairs,
        "peak_rss_mb": peak_rss,
        "device": str(runner.deca.device),
        "rasterizer": runner.deca.rasterizer.name,
        "detector": runner.detector.name if runner.detector else "none",
        "threads": torch.get_num_threads(),
        "save": args.save,
        "precision": args.precision,
        "graph": args.graph,
        "input_workers": args.input_workers,
        "loadavg": os.getloadavg()[0],
    }
    if runner.deca.device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    runner.close()
    if runner.deca.device.type == "cpu":
        result["deca_process_floor"] = _deca_process_floor(args, last_batches, out, torch.get_num_threads())
    print(json.dumps(result))


def _deca_process_floor(args, batches, out: Path, threads: int) -> dict:
    """The floor as DECA runs it: its networks alone in a fresh process on the last run's crops (`_deca_floor`)."""
    from _deca_floor import save_crops

    from decaenv.runtime.decoders import detail_latent

    crops = out / "floor-crops.pt"
    save_crops(crops, [(c["images"], detail_latent(c["pose"], c["exp"], c["detail"])) for c in batches])
    cmd = [sys.executable, str(Path(__file__).with_name("_deca_floor.py")), "--crops", str(crops)]
    cmd += ["--checkpoint", str(Path(args.data_dir) / "deca_model.tar"), "--rounds", str(args.repeat)]
    cmd += ["--threads", str(threads), "--deca-src", args.deca_src or ""]
    measured = []  # how many fresh pages a process maps depends on its own allocations: best of several
    for _ in range(FLOOR_PROCESSES):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            crops.unlink()
            return {"error": (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]}
        measured.append(json.loads(done.stdout.strip().splitlines()[-1]))
    crops.unlink()
    best = min(measured, key=lambda m: m["floor_per_image"])
    return {**best, "processes": len(measured), "all_per_image": [m["floor_per_image"] for m in measured]}


def _print_cpu(row) -> None:
    """Where the best run's CPU time went: the main process (networks, batching, writing) and the input worker
    processes, per image, and how much of the machine stayed idle — the whole run is about (main + workers) /
    CPUs / (1 - idle) per image, so when idle is near 0 only less CPU work makes it faster."""
    cpu = row.get("cpu") or {}
    if "self" not in cpu:
        return
    n = max(1, row["images"])
    idle = f", machine idle {cpu['idle']:.0%}" if "idle" in cpu else ""
    print(
        f"  CPU per image (best run): main process {1000 * cpu['self'] / n:.0f} ms, input worker processes "
        f"{1000 * cpu['children'] / n:.0f} ms, on {os.cpu_count()} CPUs{idle}"
    )


def _fault_free_verdict(row, target: float) -> None:
    """The target against the floor without page faults (the eager arithmetic alone: the strict reading)."""
    floor = row.get("fault_free_floor_per_image")
    if not floor:
        return
    ratio = row["seconds"] / max(1, row["images"]) / floor
    row["ratio_to_fault_free_floor"] = ratio
    print(
        f"  against the floor without page faults ({1000 * floor:.0f} ms per image: the same forwards after the "
        f"last run, glibc keeping every freed block): {ratio:.2f}x, <= {target}x "
        f"{'met' if ratio <= target else 'NOT met'}"
    )


def _deca_process_verdict(row, target: float) -> None:
    """The target against DECA's networks timed alone in a fresh process (`_deca_floor`)."""
    floor = row.get("deca_process_floor") or {}
    if "error" in floor:
        print(f"  the floor in a process of its own could not be timed: {floor['error']}")
    if not floor.get("floor_per_image"):
        return
    ratio = row["seconds"] / max(1, row["images"]) / floor["floor_per_image"]
    row["ratio_to_deca_process_floor"] = ratio
    print(
        f"  against {floor['code']} alone in a fresh process ({1000 * floor['floor_per_image']:.0f} ms per image, "
        f"{floor['page_faults_per_image']:.0f} minor page faults per image; torch.no_grad, NCHW inputs, glibc's "
        f"default heap, the same crops, best of {floor['processes']} processes x {floor['rounds']} rounds: "
        f"{', '.join(f'{1000 * s:.0f}' for s in floor['all_per_image'])} ms): {ratio:.2f}x, <= {target}x "
        f"{'met' if ratio <= target else 'NOT met'}"
    )


def _report(rows) -> None:
    print(
        f"\n  device {rows[0]['device']}, rasterizer {rows[0]['rasterizer']}, detector {rows[0]['detector']}, "
        f"{rows[0]['threads']} torch threads; ms per image:"
    )
    if rows[0]["rasterizer"] == "torch" and rows[0]["device"] == "cpu" and rows[0]["stages"].get("render", 0) > 0:
        print(
            "  (pure-torch rasterizer: the compiled CPU kernels are not in use, see the first line; `decaenv build "
            "--cpu` renders faster, see docs/BENCHMARKS.md)"
        )
    print(
        "  "
        + f"{'batch':>5} {'img/s':>7} "
        + " ".join(f"{s:>7}" for s in ALL_STAGES)
        + f" {'model':>7} {'floor':>7} {'vs floor':>9} {'in-run':>7} {'peak RSS':>9}"
    )
    for r in rows:
        per = {s: 1000 * r["stages"].get(s, 0.0) / r["images"] for s in ALL_STAGES + ("detail_net",)}
        model = sum(per[s] for s in MODEL_STAGES)
        floor = 1000 * r["floor_per_image"]
        in_run = (model - per["encode"] - per["detail_net"]) / model
        r.update(model_ms=model, floor_ms=floor, overhead=(model - floor) / model, overhead_in_run=in_run)
        print(
            "  "
            + f"{r['batch']:>5} {r['images'] / r['seconds']:>7.2f} "
            + " ".join(f"{per[s]:>7.0f}" for s in ALL_STAGES)
            + f" {model:>7.0f} {floor:>7.0f} {r['overhead']:>9.0%} {in_run:>7.0%} {r['peak_rss_mb']:>7.0f}MB"
        )
    print(
        "  model = encode + flame + detail + render; floor = bare eager-fp32 E_flame + E_detail + D_detail "
        f"forwards on the same crops, timed after each run (best of {rows[0]['repeat']} runs, and of the floors);"
    )
    print(
        "  vs floor = (model - floor) / model; in-run = (model - encode - D_detail forward) / model, both timed "
        "inside the same run (robust when the machine is shared)"
    )
    last = max(rows, key=lambda r: r["batch"])
    worst = max(last["overhead"], last["overhead_in_run"])
    print(
        "  whole run per image vs the eager-fp32 floor (same run): "
        + ", ".join(
            f"batch {r['batch']} {1000 * r['seconds'] / max(1, r['images']):.0f} ms = "
            f"{r['seconds'] / max(1, r['images']) / max(1e-9, r['floor_per_image']):.2f}x floor"
            for r in rows
        )
    )
    ratio = last["seconds"] / max(1, last["images"]) / max(1e-9, last["floor_per_image"])
    last["ratio_to_floor"] = ratio
    paired = statistics.median(last["paired_ratios"])
    last["paired_median"] = paired
    listed = ", ".join(f"{r:.2f}" for r in last["paired_ratios"])
    print(
        f"  paired: each run against the floor timed right after it: {listed} (median {paired:.2f}x); "
        f"best run against best floor: {ratio:.2f}x"
    )
    codes_only = set(last["save"].split(",")) <= {"codes", "table"}
    target = (0.4 if last["precision"] == "bf16" else 0.8) if codes_only else 1.0
    print(
        f"  target (issue 16, --save {last['save']}, {last['precision']}): <= {target}x floor: "
        f"{'met' if max(ratio, paired) <= target else 'NOT met'} (best/best {ratio:.2f}x, paired median "
        f"{paired:.2f}x; met = both; the floor with glibc's default heap: "
        f"{last.get('floor_page_faults_per_image', 0):.0f} minor page faults per image); load average "
        f"{last['loadavg']:.1f} on {os.cpu_count()} CPUs"
    )
    _deca_process_verdict(last, target)
    _fault_free_verdict(last, target)
    _print_cpu(last)
    print(
        f"  batch {last['batch']}: non-network share {last['overhead']:.0%} vs floor, {last['overhead_in_run']:.0%} "
        f"in-run (target <= 30 %: {'met' if worst <= 0.30 else 'NOT met'}), peak RSS "
        f"{last['peak_rss_mb'] / 1024:.2f} GB (target <= 3 GB: {'met' if last['peak_rss_mb'] <= 3072 else 'NOT met'})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--images", help="folder of images (default: 16 astronaut variations)")
    parser.add_argument("--count", type=int, default=16, help="number of generated images")
    parser.add_argument("--data-dir", help="DECA data dir (default: synthetic, built once)")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--rasterizer", default="auto")
    parser.add_argument("--save", default="vis")
    parser.add_argument("--render-orig", action="store_true", help="also render at the original size")
    parser.add_argument("--precision", default="fp32", help="fp32 (exact) or bf16")
    parser.add_argument("--graph", default="auto", help="auto, packed, freeze, compile, fused or off (eager modules)")
    parser.add_argument(
        "--overlap",
        default="auto",
        choices=("auto", "on", "off"),
        help="input side beside the networks (auto: where it pays)",
    )
    parser.add_argument(
        "--input-workers", default="auto", help="auto, threads, processes, threads:N or processes:N (reconstruct's)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per batch size (best of; floor interleaved)")
    parser.add_argument(
        "--deca-src", help="a DECA checkout: the fresh-process floor runs DECA's own network code (default: decaenv's)"
    )
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.deca_src and not (Path(args.deca_src) / "decalib" / "models").is_dir():
        parser.error(f"--deca-src {args.deca_src}: not a DECA checkout (no decalib/models in it)")
    if args.child:
        child(args)
        return 0
    from decaenv.runtime.fast import bf16_support

    print(
        f"CPU flags: {cpu_flag_summary()}; bf16: {bf16_support()[1]}; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {kernel_summary()}"
    )
    work = Path(tempfile.mkdtemp(prefix="decaenv-bench-"))
    try:  # what the benchmark generates (synthetic data dir ~270 MB, images) goes when it ends
        return _measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(args, work: Path) -> int:
    """Generate what is missing into `work`, run each batch size in its own process, report."""
    if not args.data_dir:
        from decaenv.selftest import SelftestOptions, find_public_topology
        from decaenv.synthetic import make_assets

        public = find_public_topology(SelftestOptions(out_dir=work))
        args.data_dir = str(make_assets(work / "data", seed=0, public_dir=public, with_optimizer=False).data_dir)
        print(f"synthetic data dir {args.data_dir} (topology: {'DECA public files' if public else 'procedural'})")
        if args.detector == "mtcnn":
            add_mtcnn_weights(args.data_dir)
    if not args.images:
        (work / "images").mkdir()
        _write_images(work / "images", args.count)
        args.images = str(work / "images")
    rows = []
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--batch",
            str(batch),
            "--device",
            args.device,
            "--images",
            args.images,
            "--data-dir",
            args.data_dir,
            "--detector",
            args.detector,
            "--rasterizer",
            args.rasterizer,
            "--save",
            args.save,
            "--repeat",
            str(args.repeat),
            "--precision",
            args.precision,
            "--graph",
            args.graph,
            "--overlap",
            args.overlap,
            "--input-workers",
            args.input_workers,
        ]
        cmd += ["--render-orig"] if args.render_orig else []
        cmd += ["--deca-src", str(Path(args.deca_src).resolve())] if args.deca_src else []
        done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  batch {batch}: {rows[-1]['images']} images in {rows[-1]['seconds']:.1f} s")
    _report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

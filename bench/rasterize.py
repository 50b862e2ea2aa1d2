"""Rasterizer benchmark: every available backend side by side on DECA-like input.

Input: the FLAME-topology procedural head of decaenv's synthetic assets (5,023 vertices, 9,976 faces)
projected like DECA (orthographic, s(x + t), y and z negated, z + 10), scaled so the head covers ~60 % of
the image, with a small per-image jitter. Timings are end-to-end `rasterize()` calls (frame conversion
included), median of repeated runs, reported per image; ratios are against the compiled extension of the
device (the baseline; medians, the minimum is printed too). Every backend's output is also compared
with the baseline's.

    python bench/rasterize.py                       # CPU: 224² and 1024², batch 1 and 8
    python bench/rasterize.py --device cuda         # GPU: batch 1, 8 and 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from decaenv.runtime.rasterizer import available_backends, build, extension, rasterize  # noqa: E402
from decaenv.runtime.rasterizer.verify import compare  # noqa: E402
from decaenv.synthetic.heads import deca_head_face_vertices  # noqa: E402

TARGETS = {"cpu": 5.0, "cuda": 1.4}  # ms per 224² image of the compiled kernel (issue 7)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--sizes", default="224,1024", help="square image sizes, comma-separated")
    parser.add_argument("--batches", default=None, help="batch sizes (default 1,8 on cpu, 1,8,64 on cuda)")
    parser.add_argument("--backends", default=None, help="comma-separated subset (default: all available)")
    parser.add_argument("--reference", action="store_true", help="also time the (slow) reference backend")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of timed runs per row")
    parser.add_argument("--max-runs", type=int, default=50)
    parser.add_argument("--scale", type=float, default=10.0, help="DECA camera scale s (10: ~60 %% coverage)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the CPU rows")
    parser.add_argument("--no-build", action="store_true", help="do not build a missing extension")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    return parser.parse_args(argv)


def ensure_extension(device: str, allow_build: bool) -> None:
    ok, why = extension.kernel_for(device)
    if ok or not allow_build:
        print(f"compiled {device} extension: {'loaded' if ok else 'unavailable: ' + why}")
        return
    print(f"compiled {device} extension not built: building it now (`decaenv build --{device}`) ...")
    result = build(cpu=device == "cpu", cuda=device == "cuda")
    for v in result.variants:
        print(f"  {v.variant}: {v.status} in {v.seconds:.1f} s"
              + (f" — {v.diagnosis.one_line()}" if v.diagnosis else ""))
    print(f"compiled {device} extension: {'loaded' if extension.load(retry=True) else extension.load_error()}")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_backend(fv, size: int, backend: str, device: str, min_time: float, max_runs: int):
    """Median and minimum seconds per call, number of runs and the last output."""
    for _ in range(2):
        out = rasterize(fv, size, size, backend=backend)
    sync(device)
    times, spent = [], 0.0
    while spent < min_time and len(times) < max_runs:
        start = time.perf_counter()
        out = rasterize(fv, size, size, backend=backend)
        sync(device)
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return statistics.median(times), min(times), len(times), out


def load() -> str:
    """The 1-minute load average (a shared machine makes every figure noisier)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):
        return "n/a"


def machine(device: str) -> str:
    text = f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    if device == "cuda":
        text += f", {torch.cuda.get_device_name()}"
    return text


def run(args) -> list:
    device = args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    ensure_extension(device, not args.no_build)
    names = args.backends.split(",") if args.backends else [
        b for b in available_backends(device) if b != "reference" or args.reference]
    baseline = device if device in names else names[0]
    batches = [int(b) for b in (args.batches or ("1,8,64" if device == "cuda" else "1,8")).split(",")]
    print(f"machine: {machine(device)}; baseline: {baseline}; load average {load()}")
    print(f"{'size':>6} {'batch':>5} {'backend':<10} {'ms/image':>10} {'min':>9} {'vs ' + baseline:>10} "
          f"{'runs':>5}  check")
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for batch in batches:
            fv = deca_head_face_vertices(batch=batch, scale=args.scale, jitter=0.2, seed=batch).to(device)
            results = {}
            for name in [baseline] + [n for n in names if n != baseline]:
                if name == "reference" and (batch > 1 or size > 224):
                    continue  # ~2 s per image: one row is enough to show the gap
                seconds, fastest, runs, out = time_backend(fv, size, name, device, args.min_time, args.max_runs)
                results[name] = (seconds, out)
                base_s, base_out = results[baseline]
                check = "baseline" if name == baseline else compare(base_out, out).describe()
                row = {"size": size, "batch": batch, "backend": name, "ms_per_image": 1000 * seconds / batch,
                       "min_ms_per_image": 1000 * fastest / batch, "ratio": seconds / base_s, "runs": runs,
                       "coverage": float((out.pix_to_face >= 0).float().mean())}
                rows.append(row)
                print(f"{size:>6} {batch:>5} {name:<10} {row['ms_per_image']:>10.3f} {row['min_ms_per_image']:>9.3f} "
                      f"{row['ratio']:>9.2f}x {runs:>5}  {check}", flush=True)
    report_targets(rows, device, baseline)
    return rows


def report_targets(rows: list, device: str, baseline: str) -> None:
    def ms(backend, size, batch):
        return next((r["ms_per_image"] for r in rows if (r["backend"], r["size"], r["batch"]) == (backend, size, batch)),
                    None)

    print(f"coverage of the head: {100 * rows[0]['coverage']:.0f} % of the image; load average now {load()}")
    base224 = ms(device, 224, 1)
    if base224 is not None:
        verdict = "met" if base224 <= TARGETS[device] else "NOT met"
        print(f"target: {device} kernel <= {TARGETS[device]} ms per 224² image at batch 1: {base224:.3f} ms ({verdict})")
    if device == "cuda" and base224 is not None and ms("cuda", 224, 64) is not None:
        speedup = TARGETS["cuda"] / ms("cuda", 224, 64)
        print(f"target: batch 64 at least 3x faster per image than 1.4 ms: {speedup:.1f}x "
              f"({'met' if speedup >= 3 else 'NOT met'})")
    if device == "cpu" and baseline == "cpu":
        worst = max((r["ratio"] for r in rows if r["backend"] == "torch"), default=None)
        if worst is not None:
            print(f"target: torch backend within 10x of the cpu kernel: worst {worst:.1f}x "
                  f"({'met' if worst <= 10 else 'NOT met'})")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device visible to torch", file=sys.stderr)
        return 2
    rows = run(args)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(args.device), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

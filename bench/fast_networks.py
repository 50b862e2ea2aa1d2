"""DECA's three networks: eager fp32 (the floor) against the fast graphs, side by side in one process.

    .venv/bin/python bench/fast_networks.py [--batch 8] [--graphs packed,fused,freeze,compile] [--precisions fp32,bf16]

Each round times the eager forwards (E_flame + E_detail + D_detail) and then every fast variant on the same
inputs, so all see the same machine load; the figure per variant is the median over rounds of its time
divided by the eager time of the same round. Also prints build time (fold + trace/freeze or compile + first
call) and the deviation from eager (max |fast - eager| / max |eager| of the codes). Synthetic weights (same
shapes and cost as DECA's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _common import cpu_flag_summary, synthetic_deca


def _forward(nets, images, latent) -> None:
    nets.E_flame(images)
    nets.E_detail(images)
    nets.D_detail(latent)
    if images.is_cuda:
        import torch

        torch.cuda.synchronize()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--graphs", default="packed,fused,freeze,compile")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from decaenv.runtime.fast import bf16_support, build_fast

    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags {cpu_flag_summary()}; "
        f"{bf16_support()[1]}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    deca = synthetic_deca(args.device, prefix="decaenv-fastnets-")
    torch.manual_seed(0)
    images = torch.rand(args.batch, 3, 224, 224, device=deca.device)
    latent = torch.randn(args.batch, 181, device=deca.device) * 0.1
    sync = torch.cuda.synchronize if deca.device.type == "cuda" else (lambda: None)
    if deca.device.type == "cuda":  # IEEE fp32 like the pipeline (no TF32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    with torch.inference_mode():
        reference = deca.E_flame(images)
    variants = {}
    for precision in args.precisions.split(","):
        for graph in args.graphs.split(","):
            start = time.perf_counter()
            try:
                nets = build_fast(deca, precision, graph)
                with torch.inference_mode():
                    out = nets.E_flame(images)  # the first call compiles / optimises
                    _forward(nets, images, latent)
            except Exception as exc:  # noqa: BLE001 - report and go on (e.g. no compiler for torch.compile)
                print(f"  {precision}/{graph}: unavailable ({type(exc).__name__}: {str(exc)[:120]})")
                continue
            deviation = float((out - reference).abs().max() / reference.abs().max())
            variants[f"{precision}/{graph}"] = (nets, time.perf_counter() - start, deviation)
            print(f"  built {precision}/{graph} in {variants[f'{precision}/{graph}'][1]:.1f} s", flush=True)
    ratios = {name: [] for name in variants}
    eager_times = []
    with torch.inference_mode():
        _forward(deca, images, latent)
        sync()
        for _ in range(args.rounds):
            start = time.perf_counter()
            _forward(deca, images, latent)
            eager = time.perf_counter() - start
            eager_times.append(eager)
            for name, (nets, _, _) in variants.items():
                start = time.perf_counter()
                _forward(nets, images, latent)
                ratios[name].append((time.perf_counter() - start) / eager)
    eager_ms = 1000 * statistics.median(eager_times) / args.batch
    print(
        f"  eager fp32 (floor): median {eager_ms:.1f} ms per image at batch {args.batch} ({args.rounds} rounds, "
        f"{args.device}: {1000 / eager_ms:.0f} images/s)"
    )
    for name, (_, build, deviation) in variants.items():
        ratio = statistics.median(ratios[name])
        print(
            f"  {name:<14} {ratio:5.2f}x the eager time (median of per-round ratios, min {min(ratios[name]):.2f}, "
            f"max {max(ratios[name]):.2f}; {1000 / (eager_ms * ratio):.0f} images/s); build {build:5.1f} s; codes "
            f"deviation {deviation:.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

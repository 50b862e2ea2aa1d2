"""DECA's two encoders one after the other on all torch threads (before) against side by side, half of the
threads each (`decaenv.runtime.encoder_pair`, what `encode` does with the packed graph on a CPU), in one process:
alone, then beside a busy single-threaded MTCNN process (a stand-in for an input worker that detects while the
networks run), configurations alternating in each round.

    .venv/bin/python bench/encoder_pair.py [--precision bf16] [--batch 8] [--rounds 6]

Prints ms per image of both encoders (median over rounds and each round's ratio side by side / one after the
other) and, beside the detector, its detections per second: the pair must not win by starving it. Synthetic
weights (same shapes and cost as DECA's); the detector runs on skimage's astronaut (public domain).

    .venv/bin/python bench/encoder_pair.py --precision fp32 --late    # the late blocks on the whole batch

With --late, the pair side by side as `build_fast` makes it (the late blocks on the whole batch:
`fast_packed.WHOLE_BATCH_BYTES`) against the same pair with every block in chunks, alternating.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time

from _common import cpu_flag_summary, synthetic_deca


def _detect_forever(stop, counter) -> None:
    """A busy input worker: MTCNN on one torch thread, counting detections until `stop`."""
    import skimage.data
    import torch

    from decaenv.runtime.detectors.mtcnn import MtcnnDetector

    torch.set_num_threads(1)
    detector, image = MtcnnDetector(), skimage.data.astronaut()
    while not stop.is_set():
        detector.detect_all(image)
        with counter.get_lock():
            counter.value += 1


def _rounds(variants, rounds: int, calls: int, batch: int, counter) -> dict:
    """{name: [(ms per image, detections/s), ...]} with the variants alternating within each round."""
    results = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            run()
            before, start = counter.value, time.perf_counter()
            for _ in range(calls):
                run()
            seconds = time.perf_counter() - start
            results[name].append((1000 * seconds / (calls * batch), (counter.value - before) / seconds))
    return results


def _report(label: str, results: dict, busy: bool) -> None:
    sequential, pair = results["one after the other"], results["side by side"]
    ratios = [p[0] / s[0] for p, s in zip(pair, sequential)]
    for name, rows in results.items():
        line = f"  {label:<22} {name:<20} {statistics.median(r[0] for r in rows):6.1f} ms per image"
        if busy:
            line += f", detector {statistics.median(r[1] for r in rows):4.0f} detections/s"
        print(line)
    print(
        f"  {label:<22} side by side / one after the other: median {statistics.median(ratios):.2f}x "
        f"(rounds: {' '.join(f'{r:.2f}' for r in ratios)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=4, help="encoder calls per variant and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--late", action="store_true", help="late blocks on the whole batch against all in chunks")
    args = parser.parse_args()

    import torch

    from decaenv.runtime.encoder_pair import EncoderPair
    from decaenv.runtime.fast import build_fast

    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, CPU flags {cpu_flag_summary()}; {args.precision}, "
        f"packed graph, batch {args.batch}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    deca = synthetic_deca(prefix="decaenv-pair-")
    nets = build_fast(deca, args.precision, "packed")
    images = torch.rand(args.batch, 3, 224, 224)
    pair = EncoderPair()

    def sequential():
        with torch.inference_mode():
            return nets.E_flame(images), nets.E_detail(images)

    def side_by_side():
        with torch.inference_mode():
            return pair(nets.E_flame, nets.E_detail, images)

    if args.late:
        return _compare_late(deca, nets, pair, images, args)
    same = all(torch.equal(a, b) for a, b in zip(sequential(), side_by_side()))
    print(f"  codes side by side equal to one after the other: {same}")
    variants = {"one after the other": sequential, "side by side": side_by_side}
    context = multiprocessing.get_context("spawn")
    stop, counter = context.Event(), context.Value("i", 0)
    _report("alone", _rounds(variants, args.rounds, args.calls, args.batch, counter), busy=False)
    detector = context.Process(target=_detect_forever, args=(stop, counter))
    detector.start()
    try:
        while counter.value < 5:  # started and warm
            time.sleep(0.2)
        _report("beside a detector", _rounds(variants, args.rounds, args.calls, args.batch, counter), busy=True)
    finally:
        stop.set()
        detector.join()
        pair.close()
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0 if same else 1


def _compare_late(deca, nets, pair, images, args) -> int:
    """The pair side by side with its late blocks on the whole batch against every block in chunks."""
    import torch

    from decaenv.runtime import fast_packed
    from decaenv.runtime.fast import build_fast

    saved, fast_packed.WHOLE_BATCH_BYTES = fast_packed.WHOLE_BATCH_BYTES, 0
    try:
        chunked = build_fast(deca, args.precision, "packed")
    finally:
        fast_packed.WHOLE_BATCH_BYTES = saved
    late, none = len(nets.E_flame.trunk.late_blocks), len(chunked.E_flame.trunk.late_blocks)
    print(f"  blocks on the whole batch: {late} of 16 (the comparison: {none})")

    def run(networks):
        def call():
            with torch.inference_mode():
                return pair(networks.E_flame, networks.E_detail, images)

        return call

    variants = {"late on the whole batch": run(nets), "every block in chunks": run(chunked)}
    same = all(
        torch.equal(a, b) for a, b in zip(variants["late on the whole batch"](), variants["every block in chunks"]())
    )
    print(f"  codes equal: {same}")
    results = _rounds(variants, args.rounds, args.calls, args.batch, multiprocessing.get_context("spawn").Value("i", 0))
    for name, rows in results.items():
        print(f"  {name:<24} {statistics.median(r[0] for r in rows):6.2f} ms per image (both encoders, median)")
    ratios = [a[0] / b[0] for a, b in zip(results["late on the whole batch"], results["every block in chunks"])]
    print(
        f"  whole-batch late blocks / all in chunks: median {statistics.median(ratios):.3f}x "
        f"(rounds: {' '.join(f'{r:.3f}' for r in ratios)})"
    )
    pair.close()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

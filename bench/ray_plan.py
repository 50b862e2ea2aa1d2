"""What the `--engine ray` driver holds for a video before any worker starts: the frames' pixels, as it did
(every frame decoded into the dataset's rows), against the keyframe segments it plans now (packets read, nothing
decoded; the workers decode their own segments), side by side.

    .venv/bin/python bench/ray_plan.py [--frames 1000] [--side 512] [--gop 250] [--workers 8]
    .venv/bin/python bench/ray_plan.py --clips 64 [--frames 300 --side 256 --gop 50] [--rounds 3] [--cold]

Prints, for each (run in a fresh process), the seconds and the growth of the process's peak resident memory on
a synthetic H.264 video (x264's default keyframe interval: 250), and the ratio new/old; then the segments'
sizes and the decoding the workers do in all (frames decoded from each segment's keyframe, over the frames
wanted): segments cut out of a long keyframe group decode its start again, whole groups do not.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np


def write_video(path: Path, frames: int, side: int, gop: int) -> None:
    """An H.264 video of a textured picture sliding 3 px a frame (keyframe every `gop` frames, B-frames)."""
    from decaenv.synthetic.video import write_sliding_video

    texture = np.random.default_rng(0).integers(0, 256, (side, 2 * side, 3), dtype=np.uint8)
    write_sliding_video(path, texture, frames, side, options={"g": str(gop), "bf": "3", "preset": "veryfast"})


def _child(which: str, video: str, queue) -> None:
    """One variant in a fresh process: (seconds, growth of peak resident memory in MB, (index, wanted) or None)."""
    import resource
    from types import SimpleNamespace

    from decaenv.runtime.inputs import expand_inputs
    from decaenv.runtime.ray_plan import plan_work

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if which == "old":  # what the driver held before: every frame's pixels, in the dataset's rows
        result = [item.pixels for item in expand_inputs([Path(video)], 1)]
    else:
        result = plan_work(SimpleNamespace(inputs=[Path(video)], sample_step=1, batch_size=8), done=set())
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    queue.put((seconds, grown, None if which == "old" else result.videos[0][2:]))


def measure(which: str, video: Path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child, args=(which, str(video), queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def plan_clips(args) -> int:
    """`--clips N`: the driver's planning of N clips, its videos indexed one by one (`INDEX_AHEAD` 0) against side
    by side (as built), alternating; `--cold` drops the page cache before each (Linux, root), so that the packets
    are read from the disk, as from a cluster's shared file system."""
    from types import SimpleNamespace

    from decaenv.runtime import ray_plan, video_segments

    built = ray_plan.INDEX_AHEAD
    with tempfile.TemporaryDirectory(prefix="decaenv-rayplan-") as tmp:
        folder = Path(tmp)
        for k in range(args.clips):
            write_video(folder / f"clip{k:04d}.mp4", args.frames, args.side, args.gop)
        options = SimpleNamespace(inputs=sorted(folder.glob("*.mp4")), sample_step=1, batch_size=8)
        times: dict = {"one by one": [], "side by side": []}
        for _ in range(args.rounds):
            for label, ahead in (("one by one", 0), ("side by side", built)):
                ray_plan.INDEX_AHEAD = ahead
                video_segments._index_video_of.cache_clear()
                if args.cold:
                    _drop_page_cache()
                start = time.perf_counter()
                plan = ray_plan.plan_work(options, done=set())
                times[label].append(time.perf_counter() - start)
        ray_plan.INDEX_AHEAD = built
    frames = sum(len(wanted) for *_, wanted in plan.videos)
    print(
        f"{args.clips} clips of {args.frames} frames {args.side}x{args.side} (keyframe every {args.gop}), "
        f"{frames} frames planned, page cache {'dropped before each' if args.cold else 'warm'}; best of {args.rounds}:"
    )
    one, side = min(times["one by one"]), min(times["side by side"])
    print(f"  videos indexed one by one:  {one:6.3f} s   (all: {', '.join(f'{t:.3f}' for t in times['one by one'])})")
    print(
        f"  side by side ({ray_plan.INDEX_THREADS} threads): {side:6.3f} s   "
        f"(all: {', '.join(f'{t:.3f}' for t in times['side by side'])}); {side / one:.2f}x"
    )
    return 0


def _drop_page_cache() -> None:
    import os

    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError as exc:
        message = f"--cold: cannot drop the page cache ({exc.strerror}): run as root on Linux, or drop --cold"
        raise SystemExit(message) from None


def decoded_frames(index, units) -> int:
    """Frames the workers decode: from the keyframe each unit seeks to, up to its last frame."""
    total = 0
    for unit in units:
        start = 0
        if unit["seek"] is not None:
            group = int(np.searchsorted(index.seek_at, unit["seek"]))
            start = int(np.searchsorted(index.pts, index.keyframes[group]))
        total += unit["frames"][-1] - start + 1
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--gop", type=int, default=250)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--clips", type=int, default=0, help="time the planning of this many clips instead")
    parser.add_argument("--rounds", type=int, default=3, help="with --clips: alternating rounds")
    parser.add_argument("--cold", action="store_true", help="with --clips: drop the page cache before each")
    args = parser.parse_args()
    if args.clips:
        return plan_clips(args)
    from decaenv.runtime.ray_plan import Plan

    with tempfile.TemporaryDirectory(prefix="decaenv-rayplan-") as tmp:
        video = Path(tmp) / "clip.mp4"
        write_video(video, args.frames, args.side, args.gop)
        old_s, old_mb, _ = measure("old", video)
        new_s, new_mb, (index, wanted) = measure("new", video)
    units = [json.loads(u) for u in Plan(videos=[(str(video), "clip", index, wanted)]).units(args.workers, 8)]
    sizes = [len(u["frames"]) for u in units]
    decoded = decoded_frames(index, units)
    print(f"video: {args.frames} frames of {args.side}x{args.side}, H.264, a keyframe every {args.gop} frames")
    print(f"  old (driver decodes every frame):  {old_s:6.2f} s, peak resident memory +{old_mb:7.1f} MB")
    print(f"  new (driver reads packets only):   {new_s:6.2f} s, peak resident memory +{new_mb:7.1f} MB")
    print(f"  new/old: time {new_s / old_s:.3f}x, memory {new_mb / max(old_mb, 1e-9):.4f}x")
    print(
        f"  {len(units)} segments for {args.workers} workers (frames: min {min(sizes)}, max {max(sizes)}); "
        f"keyframes {index.keyframes.shape[0]}, seekable {index.seekable}; the workers decode {decoded} frames "
        f"for {len(wanted)} ({decoded / len(wanted):.2f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What each shard of `--shard K/N` spends on a long video before any network runs: listing its frames and
decoding the ones it owns. Side by side, in one process, alternating: video frames dealt one by one (frame i to
shard i mod N: how decaenv split before, and still does to finish a split it started that way) against pieces
of about 1/N of the video (now).

    .venv/bin/python bench/shard_video.py [--frames 3000] [--side 512] [--gop 250] [--shards 8] [--step 1]
                                          [--videos 1]

With `--videos V` the job is V copies of the video (a dataset of clips): a shard then opens only the clips it has
a piece of.

Prints, for each split, the seconds each shard spent (slowest shard, all shards together) and the frames its
decoder produced, and the ratios pieces/one-by-one. The networks' time is not included: it is the same for both
splits (each shard reconstructs the same number of frames).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import cpu_flag_summary
from ray_plan import write_video


def shard_listing(videos, out: Path, shard, step: int):
    """(seconds, frames the decoder produced, frames with pixels) for one shard's `_my_items`."""
    import decaenv.runtime.video_resume as video_resume
    import decaenv.runtime.video_segments as video_segments
    from decaenv.runtime.pipeline import Reconstructor
    from decaenv.runtime.run_types import NameRegistry, ReconstructOptions

    produced = [0]
    seek_real = video_segments.frames_from_keyframe

    def counting(frames):
        for frame in frames:
            produced[0] += 1
            yield frame

    def seek(*args):
        frames = seek_real(*args)
        return None if frames is None else counting(frames)

    video_resume.frames_from_keyframe = video_segments.frames_from_keyframe = seek
    try:
        options = ReconstructOptions(inputs=list(videos), out_dir=out, shard=shard, save=("codes",), sample_step=step)
        runner = Reconstructor(options, lazy=True)
        start = time.perf_counter()
        owned = sum(item.pixels is not None for _, item in runner._my_items(NameRegistry(quiet=True)))
        return time.perf_counter() - start, produced[0], owned
    finally:
        video_resume.frames_from_keyframe = video_segments.frames_from_keyframe = seek_real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--gop", type=int, default=250)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--videos", type=int, default=1, help="copies of the video (a dataset of clips)")
    args = parser.parse_args()
    from decaenv.runtime.shard import LEGACY_SPLIT, PIECES_SPLIT, Shard

    print(f"CPU: {cpu_flag_summary()}")
    with tempfile.TemporaryDirectory(prefix="decaenv-bench-shard-") as tmp:
        video = Path(tmp) / "clip0000.mp4"
        write_video(video, args.frames, args.side, args.gop)
        videos = [video] + [Path(tmp) / f"clip{k:04d}.mp4" for k in range(1, args.videos)]
        for copy in videos[1:]:
            shutil.copyfile(video, copy)
        print(
            f"{args.videos} video(s): {args.frames} frames {args.side}x{args.side} H.264, keyframe every "
            f"{args.gop}; --sample-step {args.step}, {args.shards} shards"
        )
        results = {LEGACY_SPLIT: [], PIECES_SPLIT: []}
        for _ in range(args.rounds):
            for split in (LEGACY_SPLIT, PIECES_SPLIT):
                shards = [Shard(k, args.shards, split=split) for k in range(args.shards)]
                results[split].append([shard_listing(videos, Path(tmp) / "out", s, args.step) for s in shards])
        best = {}
        for split, rounds in results.items():
            runs = min(rounds, key=lambda r: max(s for s, _, _ in r))
            seconds = [s for s, _, _ in runs]
            produced = [p for _, p, _ in runs]
            owned = [o for _, _, o in runs]
            best[split] = (max(seconds), sum(seconds), sum(produced))
            print(
                f"{split:>7}: slowest shard {max(seconds):.2f} s, all shards {sum(seconds):.2f} s; decoder frames "
                f"per shard {min(produced)}-{max(produced)} ({sum(produced)} in all); frames owned {min(owned)}-"
                f"{max(owned)} ({sum(owned)} in all)"
            )
        old, new = best[LEGACY_SPLIT], best[PIECES_SPLIT]
        print(
            f"pieces / one by one: slowest shard {new[0] / old[0]:.2f}x, all shards {new[1] / old[1]:.2f}x, "
            f"frames decoded {new[2] / max(1, old[2]):.2f}x"
        )


if __name__ == "__main__":
    main()

"""Memory over a long run: `reconstruct --save table` over a synthetic N-frame video (default 10,000), with
resident memory sampled every 1,000 items; the pipeline (video decoding, names, crops, batches, the table's
journal, the run summary) must not grow per item.

    .venv/bin/python bench/memory_flat.py [--frames 10000] [--batch 8]

The networks are replaced by a stand-in with DECA's encode signature that returns constant codes (their
memory is per batch, not per item; a real DECA at ~0.1 s per frame would make this a 20-minute run). Frames
are 64×64 and used whole (`--iscrop false`), so the run measures the pipeline around the networks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List


def write_video(path: Path, frames: int, side: int = 64) -> None:
    """An MPEG-4 video of `frames` moving-gradient frames."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        ramp = np.linspace(0, 255, side, dtype=np.float32)
        for k in range(frames):
            image = np.stack([np.add.outer(ramp, ramp * 0 + k % 256) % 256] * 3, axis=2).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class StandInDeca:
    """DECA's encode interface with constant codes (the pipeline around the networks is what is measured)."""

    def __init__(self):
        from types import SimpleNamespace

        import torch

        self.device, self.image_size, self.precision = torch.device("cpu"), 224, "fp32"
        self.rasterizer = SimpleNamespace(name="none", reason="no rendering")  # the runtime's Backend, as reported
        self.timer = None
        self.fast = None  # no fast graphs: the pipeline's input batches stay in the default layout
        self._code = torch.linspace(-1, 1, 236)
        self._detail = torch.linspace(-1, 1, 128)

    def encode(self, images):
        from decaenv.runtime.encoders import split_codes

        batch = images.shape[0]
        codes = split_codes(self._code.expand(batch, -1).clone())
        codes.update(images=images, detail=self._detail.expand(batch, -1).clone())
        return codes


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(frames: int, batch: int, work: Path, every: int = 1000) -> dict:
    from decaenv.runtime.pipeline import Reconstructor
    from decaenv.runtime.run_types import ReconstructOptions

    video = work / "long.mp4"
    start = time.perf_counter()
    write_video(video, frames)
    made = time.perf_counter() - start
    options = ReconstructOptions(inputs=[video], out_dir=work / "out", batch_size=batch, iscrop=False, save=("table",))
    runner = Reconstructor(options, deca=StandInDeca())
    samples: List[tuple] = []
    seen = [0]

    def on_item(outcome) -> None:
        seen[0] += 1
        if seen[0] % every == 0:
            samples.append((seen[0], rss_mb()))

    start = time.perf_counter()
    summary = runner.run(on_item)
    seconds = time.perf_counter() - start
    from decaenv.runtime.table import read_codes

    rows = len(read_codes(runner.table.path)["name"])
    first_half = [mb for n, mb in samples if n <= frames // 2]
    growth = samples[-1][1] - (first_half[0] if first_half else samples[0][1])
    return {
        "frames": frames,
        "ok": summary.count("ok"),
        "rows": rows,
        "seconds": seconds,
        "video_seconds": made,
        "samples": samples,
        "growth_mb": growth,
        "kept_items": len(summary.items),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="decaenv-memflat-") as tmp:
        result = measure(args.frames, args.batch, Path(tmp))
    print(
        f"{result['ok']} of {result['frames']} frames ok, {result['rows']} table rows, {result['seconds']:.0f} s "
        f"({result['frames'] / result['seconds']:.0f} frames/s without networks)"
    )
    print("RSS by items done: " + ", ".join(f"{n}: {mb:.0f} MB" for n, mb in result["samples"]))
    print(
        f"growth from the first sample to the last: {result['growth_mb']:+.1f} MB "
        f"({1024 * result['growth_mb'] / max(1, result['frames']):.2f} KB per frame); target: flat (< 20 MB)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if result["growth_mb"] < 20 and result["rows"] == result["frames"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Face detection per photo: the MTCNN detector against the previous one, side by side in one process.

    .venv/bin/python bench/detect.py [--size 512] [--rounds 15] [--threads 2] [--images DIR] [--data-dir DIR]

Photos: `skimage.data.astronaut()` and, with `--images` (e.g. ../shared/assets/images), every image there,
each resized to `--size`² (bicubic). Each round runs `detect` on every photo with each detector in turn
(current, previous = main before issue 16's rewrite with its large-faces-first pass, and the original full
search), so all three see the same machine load; a round's figure is the mean time per photo. Printed:
median / min / max wall time over rounds per detector, the median CPU time (all threads; steadier than
wall time on a shared machine), the median of the per-round ratios against the current one,
the largest crop-corner difference between current and previous (px), the CPU flags and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from _common import cpu_flag_summary, kernel_summary


def _photos(size: int, folder):
    import numpy as np
    import skimage.data
    from PIL import Image

    from decaenv.runtime.images import read_image

    images = [("astronaut", skimage.data.astronaut())]
    if folder:
        images += [(p.name, read_image(p)) for p in sorted(Path(folder).iterdir()) if p.is_file()]
    bicubic = Image.Resampling.BICUBIC
    return [(name, np.asarray(Image.fromarray(im).resize((size, size), bicubic))) for name, im in images]


def _corners(image, box):
    import numpy as np

    from decaenv.runtime.crop import make_crop

    tform = make_crop(image, box, "bbox", "bench").tform
    corners = np.array([[0, 0, 1], [223, 0, 1], [0, 223, 1], [223, 223, 1]], float) @ np.linalg.inv(tform).T
    return corners[:, :2] / corners[:, 2:]


def _largest(faces):
    return max(faces, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])) if faces else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", default=None, help="a folder of photos to add to the astronaut")
    parser.add_argument("--data-dir", default=None, help="data dir holding mtcnn/ (default: the resolved one)")
    args = parser.parse_args()

    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _mtcnn_previous import PreviousMtcnn

    from decaenv.runtime.detectors import create_detector

    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags {cpu_flag_summary()}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; {kernel_summary()}"
    )
    current = create_detector("mtcnn", "cpu", data_dir=Path(args.data_dir) if args.data_dir else None).detector
    previous = PreviousMtcnn(current)
    photos = _photos(args.size, args.images)
    runs = {
        "current": current.detect_all,
        "previous (large faces first)": lambda im: previous.detect_all(im, fast=True),
        "original (full search)": lambda im: previous.detect_all(im, fast=False),
    }

    worst, found = 0.0, dict.fromkeys(runs, 0)
    for _, image in photos:  # warm-up, detection rate and crop agreement
        results = {label: _largest(run(image)) for label, run in runs.items()}
        for label, face in results.items():
            found[label] += face is not None
        now, before = results["current"], results["previous (large faces first)"]
        if now is not None and before is not None:
            worst = max(worst, float(np.abs(_corners(image, now.box) - _corners(image, before.box)).max()))

    times = {label: [] for label in runs}
    cpu = {label: [] for label in runs}
    for _ in range(args.rounds):
        for label, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            with torch.inference_mode():
                for _, image in photos:
                    run(image)
            times[label].append((time.perf_counter() - start) / len(photos))
            cpu[label].append((time.process_time() - start_cpu) / len(photos))

    print(f"{len(photos)} photo(s) at {args.size}×{args.size}, {args.rounds} rounds; ms per photo:")
    for label, sample in times.items():
        ratio = statistics.median(t / c for t, c in zip(sample, times["current"]))
        print(
            f"  {label:<30} median {statistics.median(sample) * 1e3:7.1f}   min {min(sample) * 1e3:7.1f}   "
            f"max {max(sample) * 1e3:7.1f}   ({ratio:.2f}× the current)   CPU time median "
            f"{statistics.median(cpu[label]) * 1e3:7.1f}   faces {found[label]}/{len(photos)}"
        )
    print(f"largest crop-corner difference, current vs previous: {worst:.3f} px")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

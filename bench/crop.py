"""The face crop's warp: decaenv's (`crop.warp_crop`) against DECA's call (skimage `warp(image / 255, P⁻¹)` on the
whole image), side by side in one process, on a photo, a 1080p frame and a 4K frame.

    .venv/bin/python bench/crop.py [--rounds 7] [--calls 10]

Each round times `--calls` crops of every size with each method in turn (so both see the same machine load); the
figure per size is the median over rounds of ms per crop, and the ratio decaenv / DECA of the same round
(median). Also checks the two agree (max |difference| of the float32 crops; the warp is bit for bit skimage's,
the float32 rounding the same).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _common import cpu_flag_summary, kernel_summary

SIZES = {"512x512 photo": (512, 512), "1080p frame": (1080, 1920), "4K frame": (2160, 3840)}


def main() -> int:
    import numpy as np
    import skimage.data
    from PIL import Image
    from skimage.transform import warp

    from decaenv.runtime.crop import crop_matrix, warp_crop

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    print(
        f"CPU flags: {cpu_flag_summary()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        f"{kernel_summary()}"
    )
    photo = Image.fromarray(skimage.data.astronaut())
    cases = []
    for name, (h, w) in SIZES.items():
        side = min(h, w)
        image = np.zeros((h, w, 3), np.uint8)
        image[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2] = np.asarray(
            photo.resize((side, side), Image.Resampling.BICUBIC)
        )
        tform = crop_matrix(np.array([w / 2, h / 2 + side * 0.05]), side * 0.45)  # the astronaut's face
        cases.append((name, image, tform))

    def ours(image, tform):
        return warp_crop(image, tform)

    def deca(image, tform):  # DECA's TestData: the whole image to float, then skimage's warp
        return warp(image / 255.0, np.linalg.inv(tform), output_shape=(224, 224)).astype(np.float32)

    times = {(name, method): [] for name, _, _ in cases for method in ("decaenv", "DECA")}
    for _ in range(args.rounds):
        for name, image, tform in cases:
            for method, fn in (("decaenv", ours), ("DECA", deca)):
                fn(image, tform)
                start = time.perf_counter()
                for _ in range(args.calls):
                    fn(image, tform)
                times[(name, method)].append((time.perf_counter() - start) / args.calls * 1e3)
    print(f"  ms per 224x224 crop, median of {args.rounds} rounds ({args.calls} crops each):")
    for name, image, tform in cases:
        a, b = times[(name, "decaenv")], times[(name, "DECA")]
        ratio = statistics.median(x / y for x, y in zip(a, b))
        diff = float(np.abs(ours(image, tform).transpose(1, 2, 0) - deca(image, tform)).max())
        print(
            f"  {name:<14} decaenv {statistics.median(a):6.2f}   DECA's skimage call {statistics.median(b):6.2f}   "
            f"ratio {ratio:.2f}x   max |diff| {diff:.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

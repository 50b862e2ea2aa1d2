"""A small reconstruction job shared by the input-side tests (threads and worker processes): four variations of
the astronaut photo, a broken PNG and a faceless grey image, and the options of a codes run over them."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np


def photos() -> List[np.ndarray]:
    """The astronaut, mirrored, resized to 300×380 and shifted down: (H, W, 3) uint8 each."""
    import skimage.data
    from PIL import Image

    base = skimage.data.astronaut()
    return [
        base,
        np.ascontiguousarray(base[:, ::-1]),
        np.asarray(Image.fromarray(base).resize((300, 380))),
        np.ascontiguousarray(np.roll(base, 40, axis=0)),
    ]


def write_mixed_folder(out: Path) -> Path:
    """`photos()` as p0…p3.png, plus p1b_broken.png (sorts between p1 and p2) and p2b_noface.png."""
    from PIL import Image

    for k, photo in enumerate(photos()):
        Image.fromarray(photo).save(out / f"p{k}.png")
    (out / "p1b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(out / "p2b_noface.png")
    return out


def codes_options(data_dir: Path, folder: Path, out: Path, **overrides):
    """`ReconstructOptions` of a `--save codes` run over `folder`: batch 3, MTCNN, the torch rasterizer."""
    from decaenv.paths import DataDir
    from decaenv.runtime.run_types import ReconstructOptions

    fields = {"batch_size": 3, "detector": "mtcnn", "rasterizer": "torch", "save": ["codes"]}
    fields.update(overrides)
    return ReconstructOptions(inputs=[folder], out_dir=out, data_dir=DataDir(data_dir, "flag"), **fields)

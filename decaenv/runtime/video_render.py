"""`reconstruct --save video`: every processed frame of a video input rendered back at its original size —
the detail shape over the frame (overlay) | the detail shape alone — and assembled into
`<video>_reconstruction.mp4` at the source frame rate divided by `--sample-step`. A shard (`--shard K/N`) writes
`<video>_reconstruction-K-of-N.mp4` of its own frames (its piece of the video).

Rendered frames wait as PNGs in a hidden folder of the output folder until the run ends; the video is then
written in frame order, a frame that failed (no face, unreadable) showing the picture and a black panel so
the timing of the source is kept. The hidden folder is removed afterwards.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import numpy as np


def overlay_panels(deca, geometry: Dict, detail: Dict, index: int, crop, image: np.ndarray) -> np.ndarray:
    """(H, 2W, 3) uint8: the detail shape composited over the picture | the detail shape on black."""
    import torch

    from decaenv.runtime.camera import crop_to_original_tform

    one = {k: v[index : index + 1] for k, v in geometry.items()}
    h, w = image.shape[:2]
    tform = crop_to_original_tform(torch.tensor(crop.tform, dtype=torch.float32)[None]).to(deca.device)
    with torch.no_grad():
        moved = deca.to_original(one, tform, h, w)
        views = deca.render.render_views(
            moved["verts"],
            moved["trans_verts"],
            moved["albedo"],
            h,
            w,
            None,
            uv_detail_normals=detail["uv_detail_normals"][index : index + 1],
            normals=detail["normals"][index : index + 1],
        )
    shape = views["shape_detail_images"][0].permute(1, 2, 0).float().cpu().numpy()
    alpha = views["shape_alpha"][0].permute(1, 2, 0).float().cpu().numpy()
    photo = image.astype(np.float32) / 255.0
    overlay = shape * alpha + photo * (1.0 - alpha)
    both = np.concatenate([overlay, shape], 1)
    return (np.clip(both, 0, 1) * 255.0).astype(np.uint8)


def fallback_panels(image: np.ndarray) -> np.ndarray:
    """The frame of an item that was not reconstructed: the picture | black."""
    return np.concatenate([image, np.zeros_like(image)], 1)


class VideoFrames:
    """Collects rendered frames per video source and writes the videos at the end of the run.

    Args:
        out_dir: the run's output folder. sample_step: `--sample-step`.
    """

    def __init__(self, out_dir: Path, sample_step: int, suffix: str = ""):
        self.out_dir, self.sample_step, self.suffix = Path(out_dir), sample_step, suffix
        self.store = self.out_dir / f".decaenv-video-{uuid.uuid4().hex[:8]}"
        self.sources: Dict[str, Path] = {}
        self.owned: Dict[str, Set[int]] = {}  # a shard's frames per source (`own`)

    @staticmethod
    def _key(source: Path) -> str:
        return hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:16]

    def _folder(self, source: Path) -> Path:
        key = self._key(source)
        self.sources.setdefault(key, Path(source))
        return self.store / key

    def watch(self, source: Path) -> None:
        """Write a video for this source even if none of its frames is reconstructed."""
        self._folder(Path(source))

    def own(self, source: Path, frame: int) -> None:
        """A shard's run: frame `frame` of `source` is this shard's (its video holds only those)."""
        if self.suffix:
            self.owned.setdefault(self._key(Path(source)), set()).add(frame)

    def add(self, source: Path, frame: int, rgb: np.ndarray) -> None:
        from PIL import Image

        folder = self._folder(Path(source))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(folder / f"{frame:08d}.png", compress_level=1)

    def finish(self) -> List[str]:
        """Write every video; returns their paths relative to the output folder."""
        from decaenv.runtime.inputs import image_name
        from decaenv.runtime.video_out import Mp4Writer, video_rate

        written = []
        try:
            for key, source in self.sources.items():
                folder = self.store / key
                if self.suffix and not self.owned.get(key):
                    continue  # another shard's video
                path = self.out_dir / f"{image_name(source)}_reconstruction{self.suffix}.mp4"
                writer = Mp4Writer(path, video_rate(source) / self.sample_step)
                try:
                    for index, rgb in self._frames_of(key, source):
                        writer.add(self._frame(folder / f"{index:08d}.png", rgb))
                    done = writer.close()
                except BaseException:
                    writer.abort()
                    raise
                if done is not None:
                    written.append(str(done.relative_to(self.out_dir)))
        finally:
            self.discard()
        return written

    def _frames_of(self, key: str, source: Path) -> Iterator[Tuple[int, np.ndarray]]:
        """(index, RGB) of the frames the video shows: every listed one, or a shard's own (decoded alone)."""
        from decaenv.runtime.images import read_video_frames
        from decaenv.runtime.inputs import expand_inputs

        if not self.suffix:
            yield from read_video_frames(source, self.sample_step)
            return
        owned = self.owned[key]
        for item in expand_inputs([source], self.sample_step, needed=lambda item, k: item.frame in owned):
            if item.frame in owned and item.pixels is not None:  # (a frame not found again is left out)
                yield item.frame, item.pixels

    @staticmethod
    def _frame(stored: Path, rgb: np.ndarray) -> np.ndarray:
        if stored.is_file():
            from PIL import Image

            with Image.open(stored) as img:
                return np.asarray(img.convert("RGB"))
        return fallback_panels(rgb)

    def discard(self) -> None:
        shutil.rmtree(self.store, ignore_errors=True)


def video_sources(inputs) -> List[Path]:
    """The video files among the command-line inputs (top level)."""
    from decaenv.runtime.inputs import classify

    return [Path(p).expanduser() for p in inputs if classify(Path(p).expanduser()) == "video"]

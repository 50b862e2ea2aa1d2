"""Synthetic videos for tests and benchmarks: a texture sliding sideways, so that encoders make P- and B-frames
(and keyframes where their options say). Needs PyAV (the `video` extra)."""

from __future__ import annotations

import os
from typing import Mapping, Optional

import numpy as np


def write_sliding_video(
    path: os.PathLike,
    texture: np.ndarray,
    frames: int,
    width: int,
    codec: str = "libx264",
    options: Optional[Mapping[str, str]] = None,
    pix_fmt: str = "yuv420p",
    rate: int = 25,
) -> None:
    """Write `frames` frames of `texture` ((H, W', 3) uint8) moving left by 3 px a frame: frame k is its columns
    3k … 3k + `width` - 1, wrapped round. `options` are the encoder's (e.g. {"g": "8", "bf": "2"})."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options=dict(options or {}))
        stream.width, stream.height, stream.pix_fmt = width, texture.shape[0], pix_fmt
        for k in range(frames):
            picture = np.ascontiguousarray(np.roll(texture, -3 * k, axis=1)[:, :width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

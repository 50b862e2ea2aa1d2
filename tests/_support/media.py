"""Awkward media files for input tests: a PNG header claiming a huge size, small test videos."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def huge_png_header(path, width=20000, height=20000):
    """A PNG whose header claims width×height (the pixels are never decoded)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )
    return path


def make_video(path, frames, codec="mpeg4", size=(64, 48)):
    """A small test video (frame k is uniformly grey 10·k); with 0 frames only the container header."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        container.start_encoding()
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 10 * k, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_gop_video(
    path, frames, codec="libx264", options=None, size=(64, 48), pix_fmt="yuv420p", rate=25, picture=None
):
    """A test video with motion (a picture sliding by 3 px a frame: `picture`, (H, W, 3) uint8, else a texture),
    so encoders use P/B-frames; `options` are the encoder's (e.g. {"g": "8", "bf": "2"}: a keyframe every 8
    frames, 2 B-frames)."""
    from decaenv.synthetic.video import write_sliding_video

    width, height = size if picture is None else (picture.shape[1], picture.shape[0])
    if picture is None:
        picture = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        picture[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    texture = np.concatenate([picture, picture[:, ::-1]], axis=1)
    write_sliding_video(path, texture, frames, width, codec, options, pix_fmt, rate)
    return path

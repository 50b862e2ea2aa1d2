"""DECA's crop warp — skimage's `warp(image / 255, P⁻¹, output_shape=(S, S))`, bilinear, constant 0, clipped —
computed for all output pixels at once from the 8-bit image.

skimage converts the whole image to float64 and interpolates channel by channel in a per-pixel loop (~3 ms for
a 224×224 crop of a 512×512 photo); here each output pixel's source position is computed once for the three
channels and only the four 8-bit neighbours it reads are converted. Every floating-point operation is the
one skimage's bilinear kernel performs, in the same order (source position `H[0]·x + H[1]·y + H[2]`, divided
by the third row's value unless that row is exactly (0, 0, 1); `top = (1 - dc)·p00 + dc·p01`, likewise
`bottom`, then `(1 - dr)·top + dr·bottom`; neighbours outside the image are 0), and the result is clipped to
the image's value range as skimage clips it — so the pixels are identical to skimage's
(tests/runtime/test_warp.py compares them bit for bit).

Where the compiled extension is loaded (`decaenv build --cpu`; the input worker processes load it), its
`warp_bilinear` kernel performs the same operations pixel by pixel in C++ (csrc/warp.h): a 224×224 crop of a
512×512 photo in an input worker, 1.9 → 0.9 ms for the crop stage.
"""

from __future__ import annotations

import functools
import threading
from typing import Optional, Tuple

import numpy as np

_LOCAL = threading.local()


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
    """(size²,) float64 output column (x) and row (y) of every output pixel, row-major."""
    rows, cols = np.divmod(np.arange(size * size, dtype=np.int64), size)
    x, y = cols.astype(np.float64), rows.astype(np.float64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


class _Scratch:
    """One thread's buffers for N output pixels of C channels (input pools warp on several threads). Reused from
    crop to crop: freshly allocated, each of these ~7 MB would be mapped and faulted in again every time (glibc
    maps blocks this large), which costs as much as the arithmetic."""

    def __init__(self, channels: int, n: int):
        self.key = (channels, n)
        self.p = np.empty((4, channels, n))  # the neighbours p00, p01, p10, p11, then the sums in place
        self.row, self.col, self.dr, self.dc, self.tmp = (np.empty(n) for _ in range(5))
        self.r0, self.c0 = np.empty(n, np.int64), np.empty(n, np.int64)
        self.index = np.empty(4 * n, np.int64)
        self.gathered = np.empty((4 * n, channels), np.uint8)

    @staticmethod
    def get(channels: int, n: int) -> "_Scratch":
        scratch = getattr(_LOCAL, "scratch", None)
        if scratch is None or scratch.key != (channels, n):
            scratch = _LOCAL.scratch = _Scratch(channels, n)
        return scratch


def _affine(m: np.ndarray, k: int, x: np.ndarray, y: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    """out = m[k, 0]·x + m[k, 1]·y + m[k, 2], evaluated left to right like skimage's C."""
    np.multiply(x, m[k, 0], out=out)
    np.multiply(y, m[k, 1], out=tmp)
    np.add(out, tmp, out=out)
    np.add(out, m[k, 2], out=out)


def _source(inverse: np.ndarray, size: int, s: _Scratch) -> None:
    """Source row and column of every output pixel, into `s.row` and `s.col`."""
    x, y = _grid(size)
    m = np.asarray(inverse, dtype=np.float64)
    _affine(m, 0, x, y, s.col, s.tmp)
    _affine(m, 1, x, y, s.row, s.tmp)
    if not (m[2, 0] == 0 and m[2, 1] == 0 and m[2, 2] == 1):  # a homography: skimage's projective branch
        _affine(m, 2, x, y, s.dr, s.tmp)  # (dr: free until the weights are computed)
        np.divide(s.col, s.dr, out=s.col)
        np.divide(s.row, s.dr, out=s.row)


def _weights(s: _Scratch) -> None:
    """Integer parts (`s.r0`, `s.c0`, int64) and fractions (`s.dr`, `s.dc`) of the source positions."""
    for value, whole, fraction in ((s.row, s.r0, s.dr), (s.col, s.c0, s.dc)):
        np.floor(value, out=s.tmp)
        np.subtract(value, s.tmp, out=fraction)  # skimage: r - <long>floor(r)
        np.copyto(whole, s.tmp, casting="unsafe")  # (exact: whole numbers)


def _neighbours(image: np.ndarray, s: _Scratch) -> None:
    """image / 255 at the four integer neighbours (floor/ceil of row × floor/ceil of col) of every position, 0
    outside the image, into `s.p` in the order p00, p01, p10, p11.

    Where a coordinate is an integer, skimage's ceil equals its floor while `floor + 1` is read here: that
    neighbour's weight is then exactly 0 and it adds +0 to a non-negative value, so the sums are the same.
    """
    h, w, channels = image.shape
    flat = image.reshape(h * w, channels)
    r0, c0, n = s.r0, s.c0, len(s.r0)
    if r0.min() >= 0 and r0.max() + 1 < h and c0.min() >= 0 and c0.max() + 1 < w:  # all inside: one gather
        base = s.index[:n]
        np.multiply(r0, w, out=base)
        np.add(base, c0, out=base)
        for k, offset in enumerate((1, w, w + 1), start=1):
            np.add(base, offset, out=s.index[k * n : (k + 1) * n])
        np.take(flat, s.index, axis=0, out=s.gathered, mode="clip")  # (all in range: "clip" only skips a copy)
        np.divide(s.gathered.reshape(4, n, channels).transpose(0, 2, 1), 255.0, out=s.p)
        return
    for k, (r, c) in enumerate(((r0, c0), (r0, c0 + 1), (r0 + 1, c0), (r0 + 1, c0 + 1))):  # a crop past the edge
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        index = np.clip(r, 0, h - 1) * w + np.clip(c, 0, w - 1)
        np.divide(np.take(flat, index, axis=0).T, 255.0, out=s.p[k])
        s.p[k][:, ~inside] = 0.0


def bilinear_warp(image: np.ndarray, inverse: np.ndarray, size: int, out: Optional[np.ndarray] = None) -> np.ndarray:
    """skimage `warp(image / 255.0, inverse, output_shape=(size, size))` (order 1, constant 0, clip).

    Args:
        image: (H, W, C) integer image (uint8 RGB). inverse: (3, 3) float64 map from output (x, y, 1) to image
        pixels (DECA's `tform.inverse`). size: output side. out: (C, size, size) array (any float dtype or
        strides, e.g. a transposed (size, size, C) float32 buffer) to write the result into.
    Returns:
        `out`, or a new (C, size, size) float64 array.
    """
    image = np.ascontiguousarray(image)
    if out is not None and _compiled_warp(image, inverse, size, out):
        return out
    channels = image.shape[2]
    s = _Scratch.get(channels, size * size)
    _source(inverse, size, s)
    _weights(s)
    _neighbours(image, s)
    p = s.p
    # skimage's kernel, operation for operation: top = (1 - dc)·p00 + dc·p01, bottom likewise,
    # (1 - dr)·top + dr·bottom (in place: products commute exactly, each sum adds the same two terms)
    left = np.subtract(1.0, s.dc, out=s.tmp)
    np.multiply(p[0], left, out=p[0])
    np.multiply(p[1], s.dc, out=p[1])
    np.add(p[0], p[1], out=p[0])
    np.multiply(p[2], left, out=p[2])
    np.multiply(p[3], s.dc, out=p[3])
    np.add(p[2], p[3], out=p[2])
    np.multiply(p[0], np.subtract(1.0, s.dr, out=s.tmp), out=p[0])
    np.multiply(p[2], s.dr, out=p[2])
    np.add(p[0], p[2], out=p[0])
    _clip_like_skimage(p[0], image)
    result = p[0].reshape(channels, size, size)
    if out is None:
        return result.copy()
    np.copyto(out, result, casting="same_kind")
    return out


def _compiled_warp(image: np.ndarray, inverse: np.ndarray, size: int, out: np.ndarray) -> bool:
    """Warp with the compiled extension's `warp_bilinear` (the same operations per pixel, in half the time and
    without the numpy code's 7 MB of scratch) when this process has loaded it and `out` is a (C, S, S) view of
    (S, S, C) float32 memory (what `crop.warp_crop` passes); returns whether it did."""
    if out.dtype != np.float32 or image.dtype != np.uint8:
        return False
    pixels = out.transpose(1, 2, 0)
    if out.shape != (image.shape[2], size, size) or not pixels.flags.c_contiguous or not pixels.flags.writeable:
        return False
    from decaenv.runtime.rasterizer.extension import loaded_op, readonly_view

    op = loaded_op("warp_bilinear")
    if op is None:
        return False
    import torch

    op(readonly_view(image), torch.from_numpy(np.array(inverse, dtype=np.float64)), torch.from_numpy(pixels))
    return True


def _clip_like_skimage(out: np.ndarray, image: np.ndarray) -> None:
    """Clip `out` in place to the range of image / 255, widened to include the constant 0 when the output holds
    it and the image's range does not (skimage's `clip=True`)."""
    low, high = float(image.min()) / 255.0, float(image.max()) / 255.0
    if not low <= 0.0 <= high and out.min() <= 0.0 <= out.max():
        low, high = min(low, 0.0), max(high, 0.0)
    np.clip(out, low, high, out=out)

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


def _source(inverse: np.ndarray, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Source (row, column) of every output pixel: two (size²,) float64 arrays."""
    x, y = _grid(size)
    m = np.asarray(inverse, dtype=np.float64)
    col = m[0, 0] * x + m[0, 1] * y + m[0, 2]
    row = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    if not (m[2, 0] == 0 and m[2, 1] == 0 and m[2, 2] == 1):  # a homography: skimage's projective branch
        z = m[2, 0] * x + m[2, 1] * y + m[2, 2]
        col, row = col / z, row / z
    return row, col


def _workspace(channels: int, n: int) -> np.ndarray:
    """This thread's (4, C, N) float64 scratch for the four neighbours (input pools warp on several threads;
    reused, so its ~5 MB are not mapped and faulted in again for every crop)."""
    scratch = getattr(_LOCAL, "scratch", None)
    if scratch is None or scratch.shape != (4, channels, n):
        scratch = _LOCAL.scratch = np.empty((4, channels, n))
    return scratch


def _neighbours(image: np.ndarray, row: np.ndarray, col: np.ndarray, out: np.ndarray) -> None:
    """image / 255 at the four integer neighbours (floor/ceil of row × floor/ceil of col) of N positions, 0
    outside the image, into `out` (4, C, N) float64 in the order p00, p01, p10, p11.

    Where a coordinate is an integer, skimage's ceil equals its floor while `floor + 1` is read here: that
    neighbour's weight is then exactly 0 and it adds +0 to a non-negative value, so the sums are the same.
    """
    h, w, channels = image.shape
    flat = image.reshape(h * w, channels)
    r0, c0 = np.floor(row).astype(np.int64), np.floor(col).astype(np.int64)
    if r0.min() >= 0 and r0.max() + 1 < h and c0.min() >= 0 and c0.max() + 1 < w:  # all inside: one gather
        base = r0 * w + c0
        index = np.concatenate([base, base + 1, base + w, base + w + 1])
        gathered = np.take(flat, index, axis=0).reshape(4, -1, channels)
        np.divide(gathered.transpose(0, 2, 1), 255.0, out=out)
        return
    for k, (r, c) in enumerate(((r0, c0), (r0, c0 + 1), (r0 + 1, c0), (r0 + 1, c0 + 1))):
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        index = np.clip(r, 0, h - 1) * w + np.clip(c, 0, w - 1)
        np.divide(np.take(flat, index, axis=0).T, 255.0, out=out[k])
        out[k][:, ~inside] = 0.0


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
    channels = image.shape[2]
    row, col = _source(inverse, size)
    p = _workspace(channels, size * size)  # p00, p01, p10, p11
    _neighbours(image, row, col, p)
    dr, dc = row - np.floor(row), col - np.floor(col)
    # skimage's kernel, operation for operation: top = (1 - dc)·p00 + dc·p01, bottom likewise,
    # (1 - dr)·top + dr·bottom (in place: products commute exactly, each sum adds the same two terms)
    left = 1 - dc
    np.multiply(p[0], left, out=p[0])
    np.multiply(p[1], dc, out=p[1])
    np.add(p[0], p[1], out=p[0])
    np.multiply(p[2], left, out=p[2])
    np.multiply(p[3], dc, out=p[3])
    np.add(p[2], p[3], out=p[2])
    np.multiply(p[0], 1 - dr, out=p[0])
    np.multiply(p[2], dr, out=p[2])
    np.add(p[0], p[2], out=p[0])
    _clip_like_skimage(p[0], image)
    result = p[0].reshape(channels, size, size)
    if out is None:
        return result.copy()
    np.copyto(out, result, casting="same_kind")
    return out


def _clip_like_skimage(out: np.ndarray, image: np.ndarray) -> None:
    """Clip `out` in place to the range of image / 255, widened to include the constant 0 when the output holds
    it and the image's range does not (skimage's `clip=True`)."""
    low, high = float(image.min()) / 255.0, float(image.max()) / 255.0
    if not low <= 0.0 <= high and out.min() <= 0.0 <= out.max():
        low, high = min(low, 0.0), max(high, 0.0)
    np.clip(out, low, high, out=out)

"""Plain 8-bit RGB/RGBA PNGs decoded faster than Pillow, for the input worker processes.

Two decoders, the first available used: libdeflate's inflater (`deflate`) with the compiled extension's
unfiltering kernel (`decaenv::png_unfilter`, csrc/png.h; `decaenv build --cpu`), then libspng (`pyspng`); both
Python packages are in the optional `decaenv[fast-png]`. A 512×512 photo: Pillow 7.1 ms, libspng 3.8 ms (zlib's
inflate is 3.0 of it), libdeflate and the kernel 2.6 ms, 2.1 since the kernel reconstructs runs of Paeth rows four
at a time (1024×1024: 22.5, 15.1, 9.2 and 7.3 ms); the same pixels: PNG
is lossless. Only files whose pixels are then Pillow's bit for bit qualify: bit depth 8, colour type RGB or RGBA
(alpha dropped, as `images.read_image` does), no EXIF orientation (`eXIf`), not animated (`acTL`); the first
decoder also needs a non-interlaced file. Anything else, or a file that does not decode, is left to Pillow, whose
errors are the one-line ones. Both decoders hold the interpreter lock while they work, so they are turned on per
process (`enable`) by the worker processes only; threads keep Pillow, which releases it.
"""

from __future__ import annotations

import importlib.util
import struct
import zlib
from typing import Iterator, Optional, Tuple

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGB, _RGBA = 2, 6
_ENABLED = False


def enable() -> bool:
    """Decode plain PNGs faster in this process from now on, if one of the decoders is here: `pyspng`, or
    `deflate` with the extension's kernel already loaded (returns whether). Without either, every PNG would be
    read twice (here, then by Pillow) for nothing."""
    global _ENABLED
    _ENABLED = importlib.util.find_spec("pyspng") is not None or _inflater_and_kernel() is not None
    return _ENABLED


def enabled() -> bool:
    return _ENABLED


def _chunks(data: bytes) -> Iterator[Tuple[bytes, int, int]]:
    """(kind, payload start, payload length) of each chunk after the signature, up to IEND or the data's end."""
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        yield kind, position + 8, length
        if kind == b"IEND":
            return
        position += 12 + length


def plain_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) of a PNG both decoders decode exactly as Pillow does (see the module docstring), else None."""
    if not data.startswith(_SIGNATURE) or len(data) < 33 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:  # Pillow refuses such a header too
        return None
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", data[16:29])
    if depth != 8 or colour not in (_RGB, _RGBA):
        return None
    for kind, _, _ in _chunks(data):  # every chunk's header: no eXIf, no acTL anywhere
        if kind in (b"eXIf", b"acTL"):
            return None
        if kind == b"IEND":
            return width, height
    return None  # truncated: Pillow says so


def decode(data: bytes) -> np.ndarray:
    """A plain PNG's (H, W, 3) uint8 RGB pixels (`plain_size` has said it is one). Raises whatever the decoder
    raises on a damaged file (ValueError when none is installed)."""
    pixels = _inflate_and_unfilter(data)
    if pixels is not None:
        return pixels
    try:
        import pyspng
    except ImportError:
        raise ValueError("no fast PNG decoder here") from None
    pixels = pyspng.load(data)
    if pixels.ndim != 3 or pixels.dtype != np.uint8 or pixels.shape[2] not in (3, 4):
        raise ValueError(f"unexpected decoded layout {pixels.shape} {pixels.dtype}")
    return np.ascontiguousarray(pixels[:, :, :3]) if pixels.shape[2] == 4 else pixels


def _inflate_and_unfilter(data: bytes) -> Optional[np.ndarray]:
    """The pixels through libdeflate and `decaenv::png_unfilter`, or None where either is missing or the file is
    interlaced. Raises ValueError (or deflate's error) on data that does not inflate to the image's size."""
    width, height, _, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    pieces = _inflater_and_kernel() if interlace == 0 else None
    if pieces is None:
        return None
    deflate, op = pieces
    channels = 3 if colour == _RGB else 4
    expected = height * (1 + width * channels)
    stream = b"".join(data[start : start + length] for kind, start, length in _chunks(data) if kind == b"IDAT")
    scanlines = deflate.zlib_decompress(stream, expected)
    if len(scanlines) != expected:
        raise ValueError(f"the image data holds {len(scanlines)} bytes, not {expected}")
    from decaenv.runtime.rasterizer.extension import readonly_view

    return op(readonly_view(scanlines), height, width, channels).numpy()


def _inflater_and_kernel():
    """(the `deflate` module, `decaenv::png_unfilter`) when both are here, else None."""
    from decaenv.runtime.rasterizer.extension import loaded_op

    op = loaded_op("png_unfilter")
    if op is None:
        return None
    try:
        import deflate
    except ImportError:
        return None
    return deflate, op

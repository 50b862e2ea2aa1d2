"""PNGs through libdeflate and the extension's `png_unfilter` kernel (`png_fast`): Pillow's pixels for every
filter type, RGB and RGBA, any size; anything it cannot decode goes back to Pillow and its one-line errors."""

from __future__ import annotations

import io
import struct
import sys
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("deflate")

from PIL import Image

from decaenv.errors import InputError
from decaenv.runtime import png_fast
from decaenv.runtime.images import read_image


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(scanlines: bytes, width: int, height: int, colour: int, interlace: int = 0, idat_size: int = 97) -> bytes:
    """A PNG of these (filtered) scanlines, its image data split over several IDAT chunks."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, interlace)
    stream = zlib.compress(scanlines, 6)
    idat = b"".join(_chunk(b"IDAT", stream[i : i + idat_size]) for i in range(0, len(stream), idat_size))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + idat + _chunk(b"IEND", b"")


def _random_png(rng: np.random.Generator, width: int, height: int, channels: int, kinds=range(5)) -> bytes:
    """Any bytes after each row's filter type are a valid image: random rows with random filter types, or
    smooth rows (where Paeth's ties and small differences occur)."""
    rows = rng.integers(0, 256, (height, width * channels), dtype=np.uint8)
    if rng.random() < 0.5:
        rows = (rows // 64).astype(np.uint8)  # small residuals: a smooth image
    kind = rng.choice(list(kinds), size=(height, 1)).astype(np.uint8)
    return _png(np.hstack([kind, rows]).tobytes(), width, height, 2 if channels == 3 else 6)


def _pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))[:, :, :3]


def test_every_filter_type_gives_pillows_pixels(built_extension):
    rng = np.random.default_rng(0)
    shapes = [(1, 1), (1, 9), (7, 1), (2, 3), (33, 17), (64, 64), (301, 5)]
    for k in range(60):
        width, height = shapes[k % len(shapes)]
        channels = 3 if k % 3 else 4
        kinds = [k % 5] if k < 10 else range(5)  # each filter type alone, then mixed
        data = _random_png(rng, width, height, channels, kinds)
        got = png_fast._inflate_and_unfilter(data)
        assert got is not None and got.dtype == np.uint8 and got.shape == (height, width, 3), k
        assert np.array_equal(got, _pillow(data)), k


@pytest.mark.parametrize("channels", [3, 4])
def test_runs_of_paeth_rows_give_pillows_pixels(built_extension, channels):
    """Four or more Paeth rows in a row are reconstructed together (a wavefront, where the compiler has SSE2):
    runs of every length from the first row or after another filter, 1 to 65 pixels wide."""
    rng = np.random.default_rng(channels)
    for width in (1, 2, 5, 64, 65):
        for height in (4, 5, 7, 9, 12):
            for lead in (0, 1, 3):  # rows of another filter type before the Paeth run
                rows = rng.integers(0, 256, (height, width * channels), dtype=np.uint8)
                if (width + height) % 2:
                    rows = (rows // 64).astype(np.uint8)  # smooth: Paeth's ties
                kind = np.full((height, 1), 4, np.uint8)
                kind[: min(lead, height)] = rng.integers(0, 4, (min(lead, height), 1))
                data = _png(np.hstack([kind, rows]).tobytes(), width, height, 2 if channels == 3 else 6)
                got = png_fast._inflate_and_unfilter(data)
                assert got is not None and np.array_equal(got, _pillow(data)), (width, height, lead)


def test_a_photo_saved_by_pillow(built_extension):
    import skimage.data

    photo = skimage.data.astronaut()
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    assert np.array_equal(png_fast._inflate_and_unfilter(buf.getvalue()), photo)


def test_decode_needs_no_libspng_and_leaves_interlaced_files_to_it(built_extension, monkeypatch):
    rng = np.random.default_rng(1)
    data = _random_png(rng, 20, 10, 3)
    monkeypatch.setitem(sys.modules, "pyspng", None)  # (importing it fails)
    assert np.array_equal(png_fast.decode(data), _pillow(data))
    interlaced = bytearray(data)
    interlaced[28] = 1
    interlaced[29:33] = struct.pack(">I", zlib.crc32(bytes(interlaced[12:29])))
    assert png_fast._inflate_and_unfilter(bytes(interlaced)) is None
    with pytest.raises(ValueError, match="no fast PNG decoder"):
        png_fast.decode(bytes(interlaced))


def test_bad_image_data_gives_pillows_one_line_errors(built_extension, tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    width, height = 16, 8
    rows = rng.integers(0, 256, (height, 1 + width * 3), dtype=np.uint8)
    rows[:, 0] = 4
    bad_kind = rows.copy()
    bad_kind[5, 0] = 7  # no such filter type
    good = _png(rows.tobytes(), width, height, 2)
    cases = {
        "bad_filter.png": _png(bad_kind.tobytes(), width, height, 2),
        "short_data.png": _png(rows.tobytes()[:-20], width, height, 2),
        "long_data.png": _png(rows.tobytes() + b"\x00" * 49, width, height, 2),
        "corrupt_stream.png": good[:60] + bytes(40) + good[100:],
    }
    with pytest.raises(RuntimeError, match="row 5 has filter type 7"):
        torch.ops.decaenv.png_unfilter(torch.from_numpy(bad_kind.reshape(-1)), height, width, 3)
    pillow = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        try:
            pillow[name] = ("pixels", read_image(tmp_path / name))
        except InputError as exc:
            pillow[name] = ("error", exc.one_line())
    monkeypatch.setattr(png_fast, "_ENABLED", True)
    for name in cases:
        try:
            got = ("pixels", read_image(tmp_path / name))
        except InputError as exc:
            got = ("error", exc.one_line())
        assert got[0] == pillow[name][0], name
        if got[0] == "error":
            assert got[1] == pillow[name][1], name
        else:
            assert np.array_equal(got[1], pillow[name][1]), name
    assert pillow["bad_filter.png"][0] == "error"


def test_kernel_refuses_bad_arguments_with_one_line(built_extension):
    op = torch.ops.decaenv.png_unfilter
    lines = torch.zeros(2 * (1 + 3 * 3), dtype=torch.uint8)
    for args, words in [
        ((lines, 2, 3, 2), "channels must be 3 or 4"),
        ((lines, 2, 4, 3), "bytes of scanlines"),
        ((lines.float(), 2, 3, 3), "uint8"),
        ((lines, 0, 3, 3), "empty image"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            op(*args)

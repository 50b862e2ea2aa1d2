"""libspng for plain PNGs in the input worker processes: only files whose pixels are then Pillow's bit for bit
qualify, and read_image gives the same arrays and the same one-line errors with it on as with Pillow alone."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import skimage.data
from PIL import Image

from decaenv.errors import InputError
from decaenv.runtime import png_fast
from decaenv.runtime.images import read_image

pytest.importorskip("pyspng")


def _png(array, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", **save)
    return buf.getvalue()


def _with_chunk(data: bytes, kind: bytes, payload: bytes) -> bytes:
    """`data` with one more chunk right after IHDR."""
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return data[:33] + chunk + data[33:]


@pytest.fixture(scope="module")
def photo():
    return np.ascontiguousarray(skimage.data.astronaut()[100:300, 150:330])


@pytest.fixture(scope="module")
def files(tmp_path_factory, photo):
    """name → (bytes, libspng may decode it)."""
    rgba = np.dstack([photo, np.linspace(0, 255, photo.size // 3).reshape(photo.shape[:2]).astype(np.uint8)])
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG", exif=exif)
    gray16 = (photo[:, :, 0].astype(np.uint16) * 257).astype(np.uint16)
    cases = {
        "rgb": (_png(photo), True),
        "rgba": (_png(rgba), True),
        "rgb_with_text": (_with_chunk(_png(photo), b"tEXt", b"Comment\x00made here"), True),
        "rgb_exif": (buf.getvalue(), False),
        "rgb_animated": (_with_chunk(_png(photo), b"acTL", struct.pack(">II", 1, 0)), False),
        "gray": (_png(photo[:, :, 0]), False),
        "gray16": (_png(gray16), False),
        "palette": (_png(np.asarray(Image.fromarray(photo).convert("P"))), False),
    }
    return cases


def test_which_files_libspng_decodes(files):
    for name, (data, plain) in files.items():
        assert (png_fast.plain_size(data) is not None) == plain, name
    data = files["rgb"][0]
    assert png_fast.plain_size(data) == (180, 200)
    assert png_fast.plain_size(data[: len(data) // 2]) is None  # truncated: no IEND
    assert png_fast.plain_size(b"GIF89a" + data[6:]) is None


@pytest.mark.parametrize("decoder", ["libspng", "first available"])
def test_read_image_is_the_same_with_libspng_on(files, tmp_path, monkeypatch, decoder):
    if decoder == "libspng":  # (libdeflate and the extension's kernel, where loaded here, would decode first)
        monkeypatch.setattr(png_fast, "_inflate_and_unfilter", lambda data: None)
    paths = {}
    for name, (data, _) in files.items():
        paths[name] = tmp_path / f"{name}.png"
        paths[name].write_bytes(data)
    pillow = {name: read_image(path) for name, path in paths.items()}
    monkeypatch.setattr(png_fast, "_ENABLED", True)
    decoded = []
    real = png_fast.decode
    monkeypatch.setattr(png_fast, "decode", lambda data: decoded.append(1) or real(data))
    for name, path in paths.items():
        got = read_image(path)
        assert got.dtype == np.uint8 and got.shape == pillow[name].shape and got.flags.c_contiguous, name
        assert np.array_equal(got, pillow[name]), name
    assert len(decoded) == sum(plain for _, plain in files.values())


def test_damaged_and_oversized_pngs_give_pillows_one_line_errors(files, tmp_path, monkeypatch):
    data = files["rgb"][0]
    damaged = bytearray(data)
    damaged[60:200] = bytes(140)  # inside IDAT: the chunk list parses, the pixels do not
    cases = {"damaged.png": bytes(damaged), "truncated.png": data[: len(data) // 2]}
    big = bytearray(data)
    big[16:24] = struct.pack(">II", 20000, 20000)  # 400 megapixels in IHDR (with its checksum)
    big[29:33] = struct.pack(">I", zlib.crc32(bytes(big[12:29])))
    cases["huge.png"] = bytes(big)
    bad_header = bytearray(data)
    bad_header[16:20] = struct.pack(">I", 181)  # the checksum no longer matches
    cases["bad_header.png"] = bytes(bad_header)
    messages = {}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError) as caught:
            read_image(tmp_path / name)
        messages[name] = caught.value.one_line()
    monkeypatch.setattr(png_fast, "_ENABLED", True)
    monkeypatch.setattr(png_fast, "_inflate_and_unfilter", lambda data: None)  # libspng's errors
    for name in cases:
        with pytest.raises(InputError) as caught:
            read_image(tmp_path / name)
        assert caught.value.one_line() == messages[name], name
    assert "megapixel" in messages["huge.png"]


@pytest.mark.slow
def test_the_worker_processes_turn_it_on(tmp_path):
    from decaenv.runtime.input_procs import PrepareSpec, ProcessInputPool

    assert not png_fast.enabled()  # this process (and its threads) keep Pillow
    pool = ProcessInputPool(1, PrepareSpec("", None))
    try:
        assert pool._pool.submit(png_fast.enabled).result() is True
    finally:
        pool.close()

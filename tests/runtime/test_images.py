"""Reading awkward image files and listing inputs (deca-spec §7; the bad-input corpus at the reader level)."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from _support.media import huge_png_header, make_video
from PIL import Image

from decaenv.errors import InputError
from decaenv.runtime import images, inputs


def _save(path, array, mode=None, **kw):
    Image.fromarray(array, mode) if mode else Image.fromarray(array)
    img = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    img.save(path, **kw)
    return path


def test_grayscale_rgba_16bit_cmyk(tmp_path):
    gray = np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (48, 1))
    out = images.read_image(_save(tmp_path / "g.png", gray))
    assert out.shape == (48, 64, 3) and np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7
    assert np.array_equal(images.read_image(_save(tmp_path / "a.png", rgba))[0, 0], [200, 0, 0])
    g16 = (np.tile(np.arange(40, dtype=np.uint16)[None], (40, 1)) * 1600).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "d.png")
    out16 = images.read_image(tmp_path / "d.png")
    assert out16.dtype == np.uint8 and out16[0, 39, 0] == round(39 * 1600 / 65535 * 255)
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 1] = 255
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    cmyk = images.read_image(tmp_path / "c.jpg")
    assert cmyk.shape == (40, 40, 3) and cmyk[..., 1].mean() > 200 and cmyk[..., 0].mean() < 60


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((30, 60, 3), np.uint8)
    array[:, :30, 0] = 255  # red on the left half of the stored pixels
    img = Image.fromarray(array)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    out = images.read_image(tmp_path / "r.jpg")
    assert out.shape == (60, 30, 3)
    assert out[:30, :, 0].mean() > 200 and out[30:, :, 0].mean() < 50  # the red half is now on top


@pytest.mark.parametrize(
    "maker,message",
    [
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_text("hello, this is not a picture\n"), "is a text file"),
        (lambda p: p.write_bytes(os.urandom(300)), "not an image"),
        (lambda p: _save(p, np.zeros((1, 1, 3), np.uint8), format="PNG"), "too small"),
        (lambda p: huge_png_header(p), "20000×20000"),
    ],
)
def test_bad_images(tmp_path, maker, message):
    path = tmp_path / "bad.png"
    maker(path)
    with pytest.raises(InputError, match=message):
        images.read_image(path)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
    path = tmp_path / "t.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(InputError, match="truncated or damaged"):
        images.read_image(path)


def test_folder_list_and_names(tmp_path):
    for name in ("b.JPG", "a.png", "c.webp", "notes.md", "d.jpeg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    listed = [p.name for p in inputs.list_folder(tmp_path)]
    assert listed == ["a.png", "b.JPG", "c.webp", "d.jpeg"]
    lst = tmp_path / "list.txt"
    lst.write_text("# comment\na.png\n\n" + str(tmp_path / "b.JPG") + "\nmissing.png\n")
    items = list(inputs.expand_inputs([lst]))
    assert [i.name for i in items] == ["a", "b", "missing"]
    assert items[2].error is not None and "does not exist" in items[2].error.message
    assert inputs.estimate_total([tmp_path, lst]) == 7


def test_unreadable_folder_is_an_item_error(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    real = os.scandir

    def deny(path="."):
        if not isinstance(path, int) and os.fspath(path) == os.fspath(folder):  # shutil.rmtree passes fds
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(inputs.os, "scandir", deny)
    items = list(inputs.expand_inputs([folder]))
    assert len(items) == 1 and "Permission denied" in items[0].error.message


def test_landmark_file_lookup(tmp_path):
    image = tmp_path / "face.jpg"
    image.write_bytes(b"x")
    assert inputs.find_landmark_file(image) is None
    (tmp_path / "face.txt").write_text("")
    assert inputs.find_landmark_file(image).name == "face.txt"
    (tmp_path / "face.mat").write_bytes(b"")
    assert inputs.find_landmark_file(image).name == "face.mat"


@pytest.mark.parametrize("step,expected", [(1, list(range(10))), (3, [0, 3, 6, 9]), (20, [0])])
def test_video_sample_step_is_honoured(tmp_path, step, expected):
    pytest.importorskip("av")
    video = make_video(tmp_path / "clip.mp4", 10)
    items = list(inputs.expand_inputs([video], sample_step=step))
    assert [i.frame for i in items] == expected
    assert items[-1].name == f"clip_frame{expected[-1]:04d}" and items[0].load().shape == (48, 64, 3)
    assert inputs.estimate_total([video, tmp_path / "gone.mp4"], sample_step=step) == len(expected) + 1  # header


@pytest.mark.parametrize("ext", ["mp4", "mkv", "avi"])
def test_a_videos_length_comes_from_its_header(tmp_path, ext):
    pytest.importorskip("av")
    from decaenv.runtime.images import video_frame_count

    video = make_video(tmp_path / f"clip.{ext}", 7)
    assert video_frame_count(video) == 7 == len(list(inputs.expand_inputs([video])))
    broken = tmp_path / f"broken.{ext}"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    assert video_frame_count(broken) is None and inputs.estimate_total([video, broken]) is None  # unknown


@pytest.mark.parametrize("ext", ["mp4", "mkv", "avi"])
def test_video_without_frames(tmp_path, ext):
    pytest.importorskip("av")
    items = list(inputs.expand_inputs([make_video(tmp_path / f"empty.{ext}", 0)]))
    assert len(items) == 1 and items[0].error is not None
    assert "no frames" in items[0].error.message or "no video stream" in items[0].error.message


def test_broken_video(tmp_path):
    pytest.importorskip("av")
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    items = list(inputs.expand_inputs([path]))
    assert "cannot be decoded" in items[0].error.message


def _png16_rgb(path, array):
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


def test_16bit_rgb_png(tmp_path):
    deep = (np.random.default_rng(0).random((24, 32, 3)) * 65535).astype(np.uint16)
    out = images.read_image(_png16_rgb(tmp_path / "rgb16.png", deep))
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    assert np.abs(out.astype(int) - np.round(deep / 257)).max() <= 1

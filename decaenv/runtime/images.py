"""Reading input images and video frames as RGB uint8, robustly, with one-line errors (deca-spec §7).

Handled: grayscale (DECA crashes on it, §10.12), RGBA / LA / palette (alpha dropped, like DECA's first three
channels), 16-bit and 32-bit integer images (scaled to 8 bits), CMYK JPEGs, EXIF orientation (applied; DECA
ignores it), multi-frame files (first frame). Refused with a clear error: empty, truncated, not an image,
too small, too large.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple

import numpy as np

from decaenv.errors import InputError
from decaenv.runtime import png_fast

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
#: Smallest side accepted (a face needs some pixels) and the largest image accepted (pixels).
MIN_SIDE = 16
MAX_PIXELS = 120_000_000


def _to_rgb8(image) -> np.ndarray:
    """A PIL image of any mode → (H, W, 3) uint8 RGB."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        if mode == "I" and array.max() > 65535:
            top = float(array.max())
        gray = np.clip(np.round(array / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        top = 1.0 if array.max() <= 1.0 else 255.0
        gray = np.clip(np.round(array / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def check_size(width: int, height: int, what: str) -> None:
    """Raise InputError for images too small or too large to reconstruct."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise InputError(
            f"{what} is {width}×{height} pixels, too small to hold a face (minimum {MIN_SIDE}×{MIN_SIDE})",
            hint="use a larger image",
        )
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{what} is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels), above the "
            f"{MAX_PIXELS // 1_000_000}-megapixel limit",
            hint="downscale it first (e.g. to 4000 pixels on the long side)",
        )


def read_image(path: os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB, EXIF orientation applied.

    Raises:
        InputError: missing, unreadable, empty, truncated, not an image, too small or too large.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    what = f"image {path}"
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", path=path) from exc
    if path.is_dir():
        raise InputError(f"{what} is a folder", path=path)
    if size == 0:
        raise InputError(f"{what} is empty (0 bytes)", hint="re-export or re-download it", path=path)
    if path.suffix.lower() == ".png" and png_fast.enabled():
        pixels = _read_plain_png(path, what)
        if pixels is not None:
            return pixels
    try:
        with _open(path) as image:
            check_size(image.width, image.height, what)
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb8(image)
    except InputError:
        raise
    except UnidentifiedImageError as exc:
        kind = "a text file" if _looks_like_text(path) else "not an image PIL can read"
        raise InputError(f"{what} is {kind}", hint="pass JPEG, PNG, BMP or WebP images", path=path) from exc
    except Image.DecompressionBombError as exc:
        raise InputError(f"{what} is too large to decode safely ({exc})", hint="downscale it first", path=path) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(
            f"{what} is truncated or damaged ({text})", hint="re-export or re-download it", path=path
        ) from exc


def _read_plain_png(path: Path, what: str):
    """A plain PNG's pixels through `png_fast`'s decoders (the worker processes turn them on), or None: Pillow
    reads it (its errors are the one-line ones)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    size = png_fast.plain_size(data)
    if size is None:
        return None
    check_size(size[0], size[1], what)
    try:
        return png_fast.decode(data)
    except Exception:  # noqa: BLE001 - damaged: Pillow reads it again and says what is wrong
        return None


#: Pillow's pixel limit is a module global: lifting it for one `Image.open` is done under this lock, so images
#: read on several threads at once (the input pool) never see, or restore, another call's value.
_PIL_LIMIT_LOCK = threading.Lock()


def _open(path: Path):
    """`Image.open` with Pillow's own decompression-bomb check lifted for the call: ours (`check_size`, with
    its one-line message) runs on the header right after. Decoding happens later, outside the lock."""
    from PIL import Image

    with _PIL_LIMIT_LOCK:  # (no limit: no DecompressionBombWarning either)
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def _looks_like_text(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def video_frame_count(path: os.PathLike, declared_only: bool = False) -> Optional[int]:
    """The number of frames a video's header declares (or its duration × frame rate, unless `declared_only`),
    without decoding; None when it says neither, or cannot be read (PyAV missing, not a video): an estimate for
    progress and planning. The declared count (MP4/MOV sample tables, AVI headers) is the number of packets."""
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            if declared_only:
                return None
            rate = stream.average_rate
            if stream.duration is not None and stream.time_base is not None and rate:
                return max(1, round(float(stream.duration * stream.time_base * rate)))
            if container.duration is not None and rate:  # (Matroska: the container's, in microseconds)
                return max(1, round(container.duration / 1e6 * float(rate)))
    except (av.error.FFmpegError, OSError, ValueError):  # "unknown": decoding reports the real problem
        return None
    return None


def open_video(path: os.PathLike):
    """PyAV's container of a video file and its first video stream (close the container). Raises InputError:
    PyAV missing, the file missing or empty, unreadable, or without a video stream."""
    path = Path(path)
    try:
        import av
    except ImportError as exc:
        raise InputError(
            f"video {path} needs PyAV to decode", hint="pip install 'decaenv[video]' (PyAV)", path=path
        ) from exc
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(f"video {path} is {'empty (0 bytes)' if path.is_file() else 'missing'}", path=path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise video_error(path, exc, 0) from exc
    if not container.streams.video:
        container.close()
        raise InputError(f"video {path} has no video stream", path=path)
    return container, container.streams.video[0]


def video_error(path: Path, exc: BaseException, count: int) -> InputError:
    """The one-line error for PyAV's `exc` after `count` decoded frames."""
    import av

    if count == 0 and isinstance(exc, getattr(av.error, "EOFError", ())):
        return InputError(f"video {path} has no frames", hint="check the file, or re-encode it", path=path)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return InputError(
        f"video {path} cannot be decoded ({text})" + (f" after {count} frames" if count else ""),
        hint="check the file (ffprobe) or convert it to MP4/H.264",
        path=path,
    )


def frame_rgb(frame, path: Path, index: int) -> np.ndarray:
    """A decoded PyAV frame → (H, W, 3) uint8 RGB. Raises InputError: too small or too large."""
    rgb = frame.to_ndarray(format="rgb24")
    check_size(rgb.shape[1], rgb.shape[0], f"video {path} frame {index}")
    return rgb


def read_video_frames(path: os.PathLike, sample_step: int = 1) -> Iterator[Tuple[int, np.ndarray]]:
    """Yield (frame index, (H, W, 3) uint8 RGB) for every `sample_step`-th decoded frame (0, step, 2·step…).

    Raises:
        InputError: PyAV missing, the file unreadable, or no frames at all.
    """
    if sample_step < 1:
        raise InputError(f"--sample-step must be at least 1, got {sample_step}")
    return counted_frames(path, lambda index: index % sample_step == 0)


def counted_frames(
    path: os.PathLike, keep: Callable[[int], bool], last: Optional[int] = None
) -> Iterator[Tuple[int, np.ndarray]]:
    """Decode from the start, counting frames: (index, RGB) of those `keep` takes, up to frame `last` (None:
    the end). Raises InputError: as `read_video_frames`."""
    path = Path(path)
    container, stream = open_video(path)
    import av

    count = 0
    try:
        with container:
            for index, frame in enumerate(container.decode(stream)):
                count += 1
                if keep(index):
                    yield index, frame_rgb(frame, path, index)
                if last is not None and index >= last:
                    return
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise video_error(path, exc, count) from exc
    if count == 0:
        raise InputError(f"video {path} has no frames", hint="check the file, or re-encode it", path=path)

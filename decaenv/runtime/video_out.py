"""Writing frame sequences: MP4 through PyAV (H.264 when the bundled ffmpeg has it, else MPEG-4 Part 2) and
animated GIF through Pillow, atomically (a temporary next to the final name, renamed when complete).

Frames are (H, W, 3) uint8 RGB of one size; odd sizes are padded by one black row/column (yuv420p needs even
sides).
"""

from __future__ import annotations

import os
import uuid
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np

from decaenv.errors import DecaenvError, InputError

if TYPE_CHECKING:
    from av.container import OutputContainer
    from av.video.stream import VideoStream

#: Codecs tried in order for MP4 (the first the installed ffmpeg can encode).
MP4_CODECS: Tuple[Literal["libx264", "h264", "mpeg4"], ...] = ("libx264", "h264", "mpeg4")
#: Frame rate used when a source video does not say its own.
DEFAULT_FPS = 25.0


def _partial(final: Path) -> Path:
    return final.with_name(f".{final.stem}.{uuid.uuid4().hex[:8]}.partial{final.suffix}")


def even_frame(rgb: np.ndarray) -> np.ndarray:
    """Pad an (H, W, 3) uint8 frame with one black row / column where a side is odd."""
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return np.ascontiguousarray(rgb)
    out = np.zeros((h + h % 2, w + w % 2, 3), np.uint8)
    out[:h, :w] = rgb
    return out


def as_rate(fps: float) -> Fraction:
    """A frame rate as the fraction ffmpeg wants (29.97 → 30000/1001)."""
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise DecaenvError(f"frame rate {fps!r} is not a positive number", hint="pass a frame rate above 0")
    return Fraction(fps).limit_denominator(1001)


def video_rate(path: os.PathLike) -> float:
    """The frame rate of a video file's first video stream (`DEFAULT_FPS` when the file does not say)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise InputError(f"cannot read the frame rate of video {path}: {exc}", path=path) from exc
    return float(rate) if rate else DEFAULT_FPS


class Mp4Writer:
    """Frames → one MP4 file, visible under its final name only after `close()`.

    Args:
        path: the final .mp4 path. fps: frames per second. crf: H.264 quality (lower is better).
    Raises:
        InputError: PyAV missing (the `video` extra).
    """

    def __init__(self, path: os.PathLike, fps: float, crf: int = 18):
        try:
            import av  # noqa: F401 - imported only to check that it is installed
        except ImportError as exc:
            raise InputError(f"writing {path} needs PyAV", hint="pip install 'decaenv[video]'") from exc
        self.path = Path(path)
        self.rate = as_rate(fps)
        self.crf = crf
        self._tmp = _partial(self.path)
        self._container: Optional[OutputContainer] = None
        self._stream: Optional[VideoStream] = None  # both set by the first frame
        self.frames = 0
        self.codec = ""

    def _open(self, height: int, width: int) -> Tuple[OutputContainer, VideoStream]:
        import av

        container = av.open(str(self._tmp), mode="w", format="mp4")
        for codec in MP4_CODECS:
            try:
                stream = container.add_stream(codec, rate=self.rate)
            except (av.error.FFmpegError, ValueError):  # PyAV's UnknownCodecError is a ValueError
                continue
            self.codec = codec
            break
        else:  # pragma: no cover - every ffmpeg build has mpeg4
            container.close()
            raise DecaenvError(
                "the installed PyAV/ffmpeg has no MP4 video encoder",
                hint="reinstall PyAV (pip install --force-reinstall av)",
            )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if self.codec != "mpeg4":
            stream.options = {"crf": str(self.crf)}
        else:
            stream.bit_rate = 8_000_000
        return container, stream

    def add(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame (every frame must have the first frame's size)."""
        import av

        frame = even_frame(np.asarray(rgb, dtype=np.uint8))
        if self._container is None or self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container, self._stream = self._open(*frame.shape[:2])
        container, stream = self._container, self._stream
        if frame.shape[:2] != (stream.height, stream.width):
            raise DecaenvError(
                f"frame {self.frames} of {self.path.name} is {frame.shape[1]}×{frame.shape[0]}, "
                f"the video is {stream.width}×{stream.height}"
            )
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
        self.frames += 1

    def close(self) -> Optional[Path]:
        """Flush, close and rename into place; returns the final path (None when no frame was added)."""
        if self._container is None or self._stream is None:
            return None
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close without keeping anything."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is removed anyway
                pass
            self._container = None
        try:
            self._tmp.unlink()
        except OSError:
            pass


def write_mp4(path: os.PathLike, frames: Sequence[np.ndarray], fps: float) -> Path:
    """All frames into one MP4 (atomically). Returns the path."""
    writer = Mp4Writer(path, fps)
    try:
        for frame in frames:
            writer.add(frame)
        done = writer.close()
    except BaseException:
        writer.abort()
        raise
    if done is None:
        raise DecaenvError(f"no frames to write to {path}")
    return done


def scaled(rgb: np.ndarray, scale: float) -> np.ndarray:
    """Area-resized frame (scale < 1 shrinks); scale 1 returns it unchanged."""
    if scale == 1.0:
        return rgb
    from PIL import Image

    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def write_gif(
    path: os.PathLike, frames: Sequence[np.ndarray], fps: float, scale: float = 1.0, loop: bool = True
) -> Path:
    """An animated GIF (Pillow, one adaptive palette per frame), atomically. Returns the path."""
    from PIL import Image

    final = Path(path)
    if not frames:
        raise DecaenvError(f"no frames to write to {final}")
    images: List[Image.Image] = [Image.fromarray(scaled(np.asarray(f, np.uint8), scale)) for f in frames]
    tmp = _partial(final)
    duration = max(20, round(1000.0 / fps))  # GIF delays are in 1/100 s; browsers clamp below 20 ms
    try:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=duration,
            loop=0 if loop else 1,
            disposal=1,
            optimize=False,
        )
        os.replace(tmp, final)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return final


def read_frames(path: Union[str, os.PathLike]) -> List[np.ndarray]:
    """Every frame of a video or animated GIF as (H, W, 3) uint8 RGB (for tests and `readback`)."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        from PIL import Image, ImageSequence

        with Image.open(path) as img:
            return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(img)]
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]

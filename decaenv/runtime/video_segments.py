"""A video's frames in segments that any machine decodes on its own: what `--engine ray` ships to its workers
instead of pixels (the driver reads packets only, never decodes, so its memory does not grow with the video).

The driver indexes a video by demuxing it (`index_video`): every frame's presentation timestamp (pts), sorted,
is the frame's index, which is the index a plain decode gives when each packet decodes to one frame (MP4/MOV/
MKV/WebM/AVI with H.264, H.265, VP9, MPEG-4, MJPEG; tests/runtime/test_video_segments.py). `plan_segments`
cuts the wanted frames into segments of about `frames` frames along keyframes; a worker seeks to a segment's
keyframe and decodes until it has every frame of it (`decode_segment`), matching frames by timestamp. Where
seeking is not reliable (MPEG program streams), where packets carry no timestamps, or where a seek misses a
frame, frames are decoded from the start and counted, exactly as a local run reads them.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from decaenv.errors import InputError
from decaenv.runtime.images import counted_frames, frame_rgb, open_video, video_error


@dataclass(frozen=True)
class VideoIndex:
    """A video's frame timestamps, from its packets.

    Attributes:
        pts: (F,) int64, sorted: frame index → presentation timestamp.
        keyframes: (K,) int64, sorted timestamps of the keyframes (where a decoder can start).
        seek_at: (K,) int64, what to seek to for each keyframe: its decoding timestamp (the one demuxers index
            by; AVI's keyframe with B-frames is shown after it), else its timestamp.
        seekable: a seek to a keyframe lands on it (checked on one keyframe).
        timed: every packet has its own timestamp (else `pts` is 0…F-1, the packets counted, and frames are
            found by counting from the start).
    """

    pts: np.ndarray
    keyframes: np.ndarray
    seek_at: np.ndarray
    seekable: bool
    timed: bool = True

    @property
    def frames(self) -> int:
        return int(self.pts.shape[0])

    def longest_group(self) -> int:
        """Frames from a keyframe to the next (or the end), the most of any keyframe; all frames without
        keyframes."""
        if self.keyframes.shape[0] == 0:
            return self.frames
        starts = np.searchsorted(self.pts, self.keyframes)
        return int(np.diff(np.append(starts, self.frames)).max())


@dataclass(frozen=True)
class Segment:
    """Frames of one video that one worker decodes.

    Attributes:
        frames: the wanted frame indices, ascending. pts: their timestamps (empty: decode from the start and count).
        seek: the keyframe's `VideoIndex.seek_at` timestamp to start from (None: the start of the file), and
        keyframe: its presentation timestamp (tried first: `frames_from_group`). stop: give up the seek at a
        frame at or after this timestamp (None: the end), then decode from the start for what is missing.
    """

    frames: Tuple[int, ...]
    pts: Tuple[int, ...] = ()
    seek: Optional[int] = None
    stop: Optional[int] = None
    keyframe: Optional[int] = None


def index_video(path: os.PathLike) -> VideoIndex:
    """The frame timestamps of a video's first video stream, by demuxing (no decoding); not `timed` when a
    packet has no timestamp or two share one. Kept for the same unchanged file (a run lists its inputs twice:
    to decide whether work is left, then to do it).

    Raises:
        InputError: PyAV missing, the file missing, empty or unreadable, no video stream, or no frames.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return _index_video(str(path))  # (reports the missing file)
    return _index_video_of(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _index_video_of(path: str, size: int, mtime_ns: int) -> VideoIndex:
    return _index_video(path)


def _index_video(path_text: str) -> VideoIndex:
    import av

    path = Path(path_text)
    container, stream = open_video(path)
    stamps: List[Optional[int]] = []
    keys: Dict[int, int] = {}
    try:
        with container:
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                stamps.append(None if packet.pts is None else int(packet.pts))
                if packet.is_keyframe and packet.pts is not None:
                    keys[int(packet.pts)] = int(packet.pts if packet.dts is None else packet.dts)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise video_error(path, exc, 0) from exc
    if not stamps:
        raise InputError(f"video {path} has no frames", hint="check the file, or re-encode it", path=path)
    pts = np.sort(np.asarray([s for s in stamps if s is not None], np.int64))
    if len(pts) < len(stamps) or not keys or np.any(pts[1:] == pts[:-1]):
        counted = np.arange(len(stamps), dtype=np.int64)
        return VideoIndex(pts=counted, keyframes=counted[:0], seek_at=counted[:0], seekable=False, timed=False)
    keyframes = np.asarray(sorted(keys), np.int64)
    seek_at = np.asarray([keys[k] for k in sorted(keys)], np.int64)
    index = VideoIndex(pts=pts, keyframes=keyframes, seek_at=seek_at, seekable=False)
    return replace(index, seekable=_lands_on_keyframe(path, index))


def _lands_on_keyframe(path: Path, index: VideoIndex) -> bool:
    """Whether seeking to the middle keyframe decodes that keyframe, or one before it, first (MPEG program
    streams land later)."""
    import av

    if index.keyframes.shape[0] < 2:
        return True  # every segment starts at the file's start
    middle = index.keyframes.shape[0] // 2
    try:
        container, stream = open_video(path)
        with container:
            container.seek(int(index.seek_at[middle]), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                return frame.pts is not None and int(frame.pts) <= int(index.keyframes[middle])
    except (InputError, av.error.FFmpegError, OSError, ValueError):
        return False
    return False


def wanted_frames(index: VideoIndex, sample_step: int, done: Set[int]) -> List[int]:
    """Every `sample_step`-th frame index that is not in `done`."""
    return [i for i in range(0, index.frames, sample_step) if i not in done]


def plan_segments(index: VideoIndex, wanted: Sequence[int], frames: int) -> List[Segment]:
    """The wanted frames in segments of about `frames` along keyframes: whole groups of pictures (a keyframe and
    the frames up to the next) are gathered until a segment holds `frames`; a longer group is cut, each piece
    starting from the group's keyframe. One segment, decoded from the start, when the video is not `timed`
    or cannot seek."""
    wanted = sorted(wanted)
    if not wanted:
        return []
    if not index.timed or not index.seekable or index.keyframes.shape[0] < 2:
        return [Segment(frames=tuple(wanted))]
    stamps = index.pts[wanted]
    groups = np.searchsorted(index.keyframes, stamps, side="right") - 1  # -1: before the first keyframe
    segments: List[Segment] = []
    start = 0
    while start < len(wanted):
        end = min(start + max(1, frames), len(wanted))
        if end < len(wanted) and groups[end] == groups[end - 1] and groups[start] != groups[end]:
            while groups[end - 1] == groups[end]:  # end on a group boundary, unless one group is longer than `frames`
                end -= 1
        segments.append(_segment(index, wanted[start:end], stamps[start:end], int(groups[start]), int(groups[end - 1])))
        start = end
    return segments


def _segment(index: VideoIndex, frames: Sequence[int], stamps: np.ndarray, first: int, last: int) -> Segment:
    keys = index.keyframes
    seek, keyframe = (None, None) if first < 0 else (int(index.seek_at[first]), int(keys[first]))
    # frames shown before a keyframe may be decoded after it (open groups): read on to the group after next
    stop = int(keys[last + 2]) if last + 2 < keys.shape[0] else None
    listed, timed = tuple(int(f) for f in frames), tuple(int(s) for s in stamps)
    return Segment(frames=listed, pts=timed, seek=seek, stop=stop, keyframe=keyframe)


def decode_segment(path: os.PathLike, segment: Segment) -> Iterator[Tuple[int, np.ndarray]]:
    """Yield (frame index, (H, W, 3) uint8 RGB) for the segment's frames, in order of decoding; frames that
    cannot be found are not yielded (the caller reports them).

    Raises:
        InputError: the file cannot be opened or decoded (frames yielded before stay valid).
    """
    path = Path(path)
    found: Set[int] = set()
    if segment.seek is not None and segment.pts:
        yield from _by_timestamp(path, segment, found)
    missing = [f for f in segment.frames if f not in found]
    if missing:
        yield from decode_counted(path, missing)


def frames_from_keyframe(path: Path, seek: Optional[int], first_pts: int) -> Optional[Iterator[Tuple[int, object]]]:
    """(pts, PyAV frame) decoded from the keyframe at `seek` (a `VideoIndex.seek_at` value; None: the file's
    start) on, in presentation order, until a frame without a timestamp; None when the seek fails or lands past
    `first_pts` (then decode from the start). Raises InputError: the file cannot be opened."""
    import av

    container, stream = open_video(path)
    try:
        if seek is not None:
            container.seek(seek, stream=stream, backward=True, any_frame=False)
        frames = container.decode(stream)
        head = next(frames, None)
    except (av.error.FFmpegError, OSError, ValueError):
        container.close()
        return None
    if head is None or head.pts is None or int(head.pts) > first_pts:
        container.close()
        return None
    return _timed(container, head, frames)


def frames_from_group(
    path: Path, keyframe: Optional[int], seek: Optional[int], first_pts: int
) -> Optional[Iterator[Tuple[int, object]]]:
    """`frames_from_keyframe` from a keyframe given by its presentation timestamp (`keyframe`) and its
    `VideoIndex.seek_at` value (`seek`): the first is tried first (MP4/MOV index keyframes by it; a seek to the
    decoding timestamp lands a whole group early there), the second where that lands past `first_pts` (AVI
    indexes by decoding timestamps); `seek` None: from the file's start. None when no seek lands at or before
    `first_pts`."""
    targets = [None] if seek is None else list(dict.fromkeys(t for t in (keyframe, seek) if t is not None))
    for target in targets:
        decoded = frames_from_keyframe(path, target, first_pts)
        if decoded is not None:
            return decoded
    return None


def _timed(container, head, frames) -> Iterator[Tuple[int, object]]:
    with container:
        yield int(head.pts), head
        for frame in frames:
            if frame.pts is None:
                return
            yield int(frame.pts), frame


def _by_timestamp(path: Path, segment: Segment, found: Set[int]) -> Iterator[Tuple[int, np.ndarray]]:
    """Seek to the segment's keyframe and take its frames by timestamp; stops early (leaving frames out of
    `found`) where the seek overshoots, a frame has no timestamp, or `stop` is passed."""
    import av

    decoded = frames_from_group(path, segment.keyframe, segment.seek, segment.pts[0])
    if decoded is None:
        return
    wanted: Dict[int, int] = dict(zip(segment.pts, segment.frames))
    count = 0
    try:
        for pts, frame in decoded:
            count += 1
            index = wanted.get(pts)
            if index is not None and index not in found:
                found.add(index)
                yield index, frame_rgb(frame, path, index)
            if len(found) == len(wanted) or (segment.stop is not None and pts >= segment.stop):
                return
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise video_error(path, exc, count) from exc
    finally:
        decoded.close()  # type: ignore[attr-defined]


def decode_counted(path: Path, frames: Sequence[int]) -> Iterator[Tuple[int, np.ndarray]]:
    """(index, RGB) of `frames`, decoded from the start and counted as a local run does; stops after the last
    one. Raises InputError: as `images.read_video_frames`."""
    wanted = set(frames)
    return counted_frames(path, wanted.__contains__, last=max(frames))

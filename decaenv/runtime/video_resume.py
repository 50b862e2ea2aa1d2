"""A video's frames for a run that needs only some of them (`--skip-existing` after a kill, a finished run run
again, a shard's pieces): listed from the video's packets (`video_segments.index_video`, nothing decoded),
decoded from the keyframe before each run of needed frames (a run that starts a whole keyframe group or more
after the frame decoded last seeks again), and matched to their index by timestamp — the index a plain decode
counts when each packet decodes to one frame. A rerun of a finished run then decodes nothing; a run killed at nine
tenths decodes the last tenth; a shard decodes its pieces. Where that cannot be done safely (packets without
timestamps, unreliable seeking, a first seek that lands past the first needed frame) the needed frames are decoded
from the start and counted, up to the last one, and converted alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Set, Tuple

import numpy as np

from decaenv.errors import InputError
from decaenv.runtime.images import frame_rgb, video_error, video_frame_count
from decaenv.runtime.video_segments import (
    VideoIndex,
    decode_counted,
    frames_from_group,
    frames_from_keyframe,
    index_video,
)

#: One listed frame: (index, RGB pixels or None when not needed, the error when it could not be had); index
#: None: an error for the whole video (reading stopped there).
Listed = Tuple[Optional[int], Optional[np.ndarray], Optional[InputError]]


def listed_count(path: Path, sample_step: int) -> Optional[int]:
    """How many frames a run lists from the video (every `sample_step`-th of its packets): the count its header
    declares (read without the packets), else its packets counted; None when it cannot be indexed (the run then
    reports it as one failed item)."""
    frames = video_frame_count(path, declared_only=True)
    if frames is None:
        try:
            frames = index_video(path).frames
        except InputError:
            return None
    return -(-frames // max(1, sample_step))


def resumed_frames(path: Path, sample_step: int, needed: Callable[[int, int], bool]) -> Optional[Iterator[Listed]]:
    """Every `sample_step`-th frame of the video, in order (`Listed`): `needed(index, k)` ones with their pixels,
    the others without (a run skips them unread); None when every listed frame is needed or the video cannot be
    indexed (the caller then decodes from the start). A video that cannot seek by timestamp, or whose seek
    lands past the first needed frame, is decoded from the start, counted, up to the last needed frame; only the
    needed ones are converted to RGB."""
    try:
        index = index_video(path)
    except InputError:
        return None  # the plain decode reports it
    frames = range(0, index.frames, sample_step)
    wanted = {i for k, i in enumerate(frames) if needed(i, k)}
    if len(wanted) == len(frames):
        return None
    if not index.timed or not index.seekable:
        return _counted(path, frames, wanted)
    decoded = _decoded_from(path, index, min(wanted)) if wanted else _nothing()
    if decoded is None:  # the seek lands late (MPEG program streams): counted from the start
        return _counted(path, frames, wanted)
    return _merged(path, frames, wanted, index, decoded)


def _counted(path: Path, frames: Sequence[int], wanted: Set[int]) -> Iterator[Listed]:
    """The frames in order, the wanted ones decoded from the start and counted (`video_segments.decode_counted`)."""
    decoded = decode_counted(path, sorted(wanted)) if wanted else iter(())
    try:
        for i in frames:
            got = next(decoded, None) if i in wanted else (i, None)
            if got is None:
                yield i, None, InputError(f"video {path} ended before frame {i}", hint="check the file", path=path)
            else:
                yield i, got[1], None
    except InputError as exc:
        yield None, None, exc


def _decoded_from(path: Path, index: VideoIndex, first: int) -> Optional[Iterator[Tuple[int, object]]]:
    """(frame pts, PyAV frame) from the keyframe before frame `first` on (`frames_from_group`), or None when the
    seek lands past it."""
    group = int(np.searchsorted(index.keyframes, index.pts[first], side="right")) - 1
    if group < 0:
        return frames_from_keyframe(path, None, int(index.pts[first]))
    return frames_from_group(path, int(index.keyframes[group]), int(index.seek_at[group]), int(index.pts[first]))


def _merged(path: Path, frames: Sequence[int], wanted: Set[int], index: VideoIndex, decoded) -> Iterator[Listed]:
    """The frames in order: the wanted ones with the pixels of the decoded frame of their timestamp, seeking again
    where that skips a keyframe group (`_skips_groups`)."""
    import av

    current: Optional[Tuple[int, object]] = None
    try:
        for i in frames:
            if i not in wanted:
                yield i, None, None
                continue
            target = int(index.pts[i])
            if current is not None and _skips_groups(index, current[0], target):
                decoded, current = _sought(path, index, i, decoded), None
            current = current if current is not None and current[0] >= target else next(decoded, None)
            while current is not None and current[0] < target:
                current = next(decoded, None)
            if current is None or current[0] != target:
                lost = InputError(
                    f"frame {i} of video {path} was not found after seeking to its keyframe",
                    hint="rerun without --skip-existing",
                    path=path,
                )
                yield i, None, lost
                continue
            yield i, frame_rgb(current[1], path, i), None
    except InputError as exc:
        yield None, None, exc
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        yield None, None, video_error(path, exc, 0)
    finally:
        decoded.close()


def _nothing() -> Iterator[Tuple[int, object]]:
    """No frames (a generator, so that it closes like a decoder)."""
    yield from ()


def _skips_groups(index: VideoIndex, decoded: int, target: int) -> bool:
    """Whether a whole keyframe group lies between the frame decoded last (timestamp `decoded`) and the group of
    `target`: then seeking skips it (a seek that lands one group early costs what decoding on would)."""
    groups = np.searchsorted(index.keyframes, np.asarray([decoded, target]), side="right")
    return int(groups[1] - groups[0]) >= 2


def _sought(path: Path, index: VideoIndex, first: int, decoded):
    """Frames from the keyframe before frame `first` (closing `decoded`), or `decoded` decoded on when that seek
    does not land at or before it."""
    fresh = _decoded_from(path, index, first)
    if fresh is None:
        return decoded
    decoded.close()
    return fresh

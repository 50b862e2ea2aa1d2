"""What to reconstruct: an image, a folder, a text list of paths, a video, or several of these.

`expand_inputs` turns the command-line inputs into work items lazily; problems with one input (an unreadable
folder, a missing list entry) become failed items instead of stopping the run (DECA's `TestData` exits).
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from decaenv.errors import InputError
from decaenv.runtime.images import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    read_image,
    read_video_frames,
    video_frame_count,
)

LIST_EXTENSIONS = (".txt", ".lst", ".list")

_T = TypeVar("_T")


@dataclass(frozen=True)
class Item:
    """One picture to reconstruct.

    Attributes:
        name: output name (image basename without extension; `<video>_frame%04d` for video frames).
        source: the file it comes from. frame: video frame index, or None.
        pixels: the decoded RGB uint8 image for video frames (None for files: read on demand).
        error: a problem found while listing (the item then fails with it).
        video: a whole video, listed but not decoded (`expand_inputs(..., decode_videos=False)`).
    """

    name: str
    source: Path
    frame: Optional[int] = None
    pixels: Optional[np.ndarray] = None
    error: Optional[InputError] = None
    video: bool = False

    def load(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB. Raises InputError."""
        if self.error is not None:
            raise self.error
        if self.pixels is not None:
            return self.pixels
        if self.frame is not None:  # a frame listed without pixels: one the run said it does not need
            raise InputError(f"frame {self.frame} of video {self.source} was not decoded", path=self.source)
        return read_image(self.source)

    @property
    def label(self) -> str:
        return f"{self.source} frame {self.frame}" if self.frame is not None else str(self.source)


def classify(path: Path) -> str:
    """ "folder", "image", "video", "list" or "unknown" for an input path (by type and extension)."""
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in LIST_EXTENSIONS:
        return "list"
    return "unknown"


def image_name(path: Path) -> str:
    """DECA's `imagename`: the basename without its last extension (NFC-normalised)."""
    return unicodedata.normalize("NFC", path.stem)


def list_folder(folder: Path) -> List[Path]:
    """Images directly inside a folder (jpg, jpeg, png, bmp, webp, any case), sorted by name.

    Raises:
        InputError: the folder cannot be listed.
    """
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.is_file() and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS]
    except OSError as exc:
        raise InputError(
            f"cannot read folder {folder}: {exc.strerror or exc}", hint="check its permissions", path=folder
        ) from exc
    return [folder / n for n in sorted(names)]


def read_list_file(path: Path) -> List[Path]:
    """Paths in a text list (one per line; blank lines and `#` comments skipped; relative to the list's folder).

    Raises:
        InputError: unreadable or not text.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read list file {path}: {getattr(exc, 'strerror', None) or exc}",
            hint="pass a UTF-8 text file with one path per line",
            path=path,
        ) from exc
    out = []
    for line in text.splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            candidate = Path(entry).expanduser()
            out.append(candidate if candidate.is_absolute() else path.parent / candidate)
    return out


def frame_name(video: str, frame: int) -> str:
    """A video frame's output name: `<video>_frame%04d` (DECA's)."""
    return f"{video}_frame{frame:04d}"


def _failed(path: Path, error: InputError) -> Item:
    return Item(name=image_name(path), source=path, error=error)


#: `needed(item, k)`: whether a run needs the k-th listed frame of a video (False: its outputs exist, or another
#: shard owns it); `expand_inputs` then decodes only from the keyframe before each run of needed frames.
FrameFilter = Callable[[Item, int], bool]
#: `on_video(path, listed)`: a video's frames are about to be listed, `listed` of them after `--sample-step` (as
#: its header declares, else from its packets; None when it cannot be indexed) — how a shard cuts it into pieces
#: (`shard.Ownership`). False: the run needs none of them; the video is then listed as one `video` item, unread.
VideoStart = Callable[[Path, Optional[int]], Optional[bool]]


def _video_items(
    path: Path, sample_step: int, needed: Optional[FrameFilter] = None, on_video: Optional[VideoStart] = None
) -> Iterator[Item]:
    if on_video is not None:
        from decaenv.runtime.video_resume import listed_count

        if on_video(path, listed_count(path, sample_step)) is False:  # none of it is the run's: not even read
            yield Item(name=image_name(path), source=path, video=True)
            return
    if needed is not None:
        from decaenv.runtime.video_resume import resumed_frames

        name = image_name(path)
        resumed = resumed_frames(path, sample_step, lambda i, k: needed(Item(frame_name(name, i), path, frame=i), k))
        if resumed is not None:
            for index, pixels, error in resumed:
                if index is None:  # reading the video stopped here
                    yield _failed(path, error or InputError(f"video {path} cannot be read", path=path))
                    return
                yield Item(frame_name(name, index), path, frame=index, pixels=pixels, error=error)
            return
    try:
        for index, pixels in read_video_frames(path, sample_step):
            yield Item(name=frame_name(image_name(path), index), source=path, frame=index, pixels=pixels)
    except InputError as exc:
        yield _failed(path, exc)


def _expand_one(
    path: Path,
    sample_step: int,
    depth: int,
    decode_videos: bool = True,
    needed: Optional[FrameFilter] = None,
    on_video: Optional[VideoStart] = None,
) -> Iterator[Item]:
    kind = classify(path)
    if not path.exists() and not path.is_symlink():
        yield _failed(path, InputError(f"input {path} does not exist", path=path))
    elif kind == "folder":
        try:
            files = list_folder(path)
        except InputError as exc:
            yield _failed(path, exc)
            return
        if not files:
            yield _failed(path, InputError(f"folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)})", path=path))
        for file in files:
            yield Item(name=image_name(file), source=file)
    elif kind == "video" and not decode_videos:
        yield Item(name=image_name(path), source=path, video=True)
    elif kind == "video":
        yield from _video_items(path, sample_step, needed, on_video)
    elif kind == "list" and depth == 0:
        try:
            entries = read_list_file(path)
        except InputError as exc:
            yield _failed(path, exc)
            return
        for entry in entries:
            yield from _expand_one(entry, sample_step, depth + 1, decode_videos, needed, on_video)
    elif kind in ("image", "unknown"):
        yield Item(name=image_name(path), source=path)
    else:
        yield _failed(path, InputError(f"input {path}: a list file inside a list file is not supported", path=path))


def expand_inputs(
    inputs: Sequence[Union[str, os.PathLike]],
    sample_step: int = 1,
    decode_videos: bool = True,
    needed: Optional[FrameFilter] = None,
    on_video: Optional[VideoStart] = None,
) -> Iterator[Item]:
    """Work items for the inputs, in order (folders sorted by name, video frames every `sample_step`-th; with
    `decode_videos` False a video is one item, `video` True, for the caller to split). With `needed`, a video's
    frames the run does not need come without pixels, and decoding starts at the keyframe before each run of
    needed frames (`video_resume`): a resumed or finished run does not decode again what it has done, a shard
    decodes only its pieces. `on_video` is told each video's length before its frames."""
    for raw in inputs:
        yield from _expand_one(Path(raw).expanduser(), sample_step, 0, decode_videos, needed, on_video)


def find_landmark_file(image_path: Path) -> Optional[Path]:
    """DECA's landmark files next to an image: `<stem>.mat` (key `pt3d_68`) first, then `<stem>.txt`
    (68×2); also accepted with the full file name (`<image>.mat`, `<image>.txt`)."""
    stem = image_path.with_suffix("")
    for candidate in (Path(f"{stem}.mat"), Path(f"{stem}.txt"), Path(f"{image_path}.mat"), Path(f"{image_path}.txt")):
        if candidate.is_file() and candidate != image_path:
            return candidate
    return None


def batched(items: Iterable[_T], size: int, keep: Callable[[_T], bool] = lambda item: True) -> Iterator[List[_T]]:
    """Group items into lists of at most `size`."""
    batch: List[_T] = []
    for item in items:
        if keep(item):
            batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def estimate_total(inputs: Sequence[os.PathLike], sample_step: int = 1) -> Optional[int]:
    """Number of items the inputs will give (a video's from its header, every `sample_step`-th frame), or None
    when unknown (a video whose header declares no length, unreadable entries)."""
    parts = estimate_parts(inputs, sample_step)
    return None if parts is None else sum(count for count, _ in parts)


def estimate_parts(inputs: Sequence[os.PathLike], sample_step: int = 1) -> Optional[List[Tuple[int, bool]]]:
    """(items, is a video) for each input in order (a folder's pictures as one part, a video's frames from its
    header after `sample_step`), or None when a count is unknown (as `estimate_total`)."""
    parts: List[Tuple[int, bool]] = []
    for raw in inputs:
        path = Path(raw).expanduser()
        kind = classify(path)
        try:
            if kind == "folder":
                parts.append((max(1, len(list_folder(path))), False))
            elif kind == "list":
                entries = read_list_file(path)
                nested = any(classify(e) == "list" for e in entries)
                sub = None if nested else estimate_parts(entries, sample_step)
                if sub is None:
                    return None
                parts.extend(sub)
            elif kind == "video":
                frames = video_frame_count(path) if path.is_file() else 1  # (a missing video: one failed item)
                if frames is None:
                    return None
                parts.append((-(-frames // max(1, sample_step)), path.is_file()))
            else:
                parts.append((1, False))
        except InputError:
            parts.append((1, False))
    return parts

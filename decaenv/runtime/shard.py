"""Splitting a job over processes: `--shard K/N` and `--shard auto`.

Which items a shard takes: the sorted input list is read as a row of units — each picture one unit, each video
its frames (after `--sample-step`) cut into consecutive pieces of `Shard.piece_size` frames — and unit u belongs
to shard u mod N. With pictures only, item i belongs to shard i mod N. A video is cut into N equal pieces (fewer,
of at least `MIN_PIECE` frames, when it is short), so a shard decodes its pieces from the keyframe before each,
not the whole video, and a long video still spreads over every shard. Tables written by decaenv before pieces
(video frames dealt one by one, `LEGACY_SPLIT`) are continued the way they were started (`Shard.split`).

`auto` reads the launcher's variables: Slurm job arrays (`SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT`,
minus `SLURM_ARRAY_TASK_MIN`, divided by `SLURM_ARRAY_TASK_STEP`), torchrun (`RANK` / `WORLD_SIZE`),
Open MPI (`OMPI_COMM_WORLD_RANK` / `OMPI_COMM_WORLD_SIZE`) and PMI/MPICH (`PMI_RANK` / `PMI_SIZE`); with
none of them set it is the whole job (0/1). Ray needs no shard: `--engine ray` spreads the items itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping, Optional, Tuple

from decaenv.errors import UsageError

if TYPE_CHECKING:
    from decaenv.runtime.inputs import Item

#: A video is cut into pieces of at least this many listed frames: each piece decodes from the keyframe before
#: it, on average half a keyframe group (x264's default group, 250 frames of 512², decodes in ~0.2 s on one CPU
#: core, the time of ~3 frames of DECA), so a shorter piece would spend more on decoding than it saves in balance.
MIN_PIECE = 32
#: `Shard.split` values: video frames in pieces (this version), or one by one (tables of earlier versions).
PIECES_SPLIT, LEGACY_SPLIT = "pieces", "frames"

#: (rank variable, count variable, launcher) in the order `auto` tries them.
LAUNCHERS: Tuple[Tuple[str, str, str], ...] = (
    ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "Slurm job array"),
    ("RANK", "WORLD_SIZE", "torchrun"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "Open MPI"),
    ("PMI_RANK", "PMI_SIZE", "PMI/MPICH"),
)


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based); `origin` says where it came from."""

    index: int
    count: int
    origin: str = "--shard"
    split: str = PIECES_SPLIT

    def owns(self, unit: int) -> bool:
        """Whether unit `unit` (a picture, or a piece of a video: module docstring) belongs to this shard."""
        return unit % self.count == self.index

    def share(self, total: int, start: int = 0) -> int:
        """How many of the units start … start+total-1 belong to this shard."""
        return _owned_below(start + total, self) - _owned_below(start, self)

    def piece_size(self, listed: int) -> int:
        """Frames per piece of a video with `listed` frames after `--sample-step`: as many equal pieces as there
        are shards, fewer where a piece would have under `MIN_PIECE` frames."""
        if self.split == LEGACY_SPLIT:
            return 1
        pieces = min(self.count, max(1, listed // MIN_PIECE))
        return -(-listed // pieces)

    @property
    def suffix(self) -> str:
        """File-name part that keeps shards apart: "" for the whole job, "-K-of-N" otherwise."""
        return "" if self.count == 1 else f"-{self.index}-of-{self.count}"

    def describe(self) -> str:
        return f"shard {self.index}/{self.count} ({self.origin})"


def _owned_below(end: int, shard: Shard) -> int:
    """How many of the units 0 … end-1 belong to `shard`."""
    return max(0, (end - shard.index + shard.count - 1) // shard.count)


@dataclass
class _Video:
    """The pieces of the video being listed: units `base` … `base + pieces - 1`, `size` frames each."""

    path: str
    base: int
    size: int
    pieces: int
    last: int = -1  # the last listed frame seen (its position among the video's listed frames)

    def unit(self, k: int) -> int:
        return self.base + min(k // self.size, self.pieces - 1)


@dataclass
class Ownership:
    """Which of the listed items, read in order, belong to `shard` (None: the whole job): the inputs' listing
    calls `start_video` before a video's frames, `owns_frame` says whether the shard needs frame k of it (so that
    the others are not decoded), and `takes` is asked for every listed item in order."""

    shard: Optional[Shard]
    sample_step: int = 1
    unit: int = 0  # the next unit's number
    _video: Optional[_Video] = field(default=None, repr=False)

    def start_video(self, path: os.PathLike, listed: Optional[int]) -> bool:
        """A video with `listed` frames after `--sample-step` starts (None: it cannot be listed — one unit);
        returns whether any of its pieces is the shard's (if not, its frames need not be listed at all)."""
        size, pieces = self._cut(listed)
        self._video = _Video(str(path), self.unit, size, pieces)
        self.unit += pieces
        return self.shard is None or self.shard.share(pieces, self.unit - pieces) > 0

    def _cut(self, listed: Optional[int]) -> Tuple[int, int]:
        """(frames per piece, pieces) of a video with `listed` frames (None or 0: one unit of its own); the whole
        job takes a video as one piece."""
        count = max(1, listed or 1)
        size = self.shard.piece_size(count) if self.shard is not None and listed else count
        return size, -(-count // size)

    def owns_frame(self, k: int) -> bool:
        """Whether listed frame k of the video started last belongs to the shard."""
        video = self._video
        return self.shard is None or video is None or self.shard.owns(video.unit(k))

    def takes(self, item: "Item") -> bool:
        """Whether `item`, the next listed one, belongs to the shard: a frame (or the failure) of the video started
        last by its piece (a failure by the piece of the frame after the last one listed), anything else as a
        unit of its own."""
        video = self._video
        if video is not None and str(item.source) == video.path:
            video.last = item.frame // self.sample_step if item.frame is not None else video.last + 1
            return self.owns_frame(video.last)
        self._video = None
        self.unit += 1
        return self.shard is None or self.shard.owns(self.unit - 1)

    def share(self, parts: Iterable[Tuple[int, bool]]) -> int:
        """How many items of `parts` ((items, is a video) in input order, from `inputs.estimate_parts`) the shard
        takes."""
        if self.shard is None:
            return sum(count for count, _ in parts)
        total = unit = 0
        for count, video in parts:
            if not video:
                total, unit = total + self.shard.share(count, unit), unit + count
                continue
            size, pieces = self._cut(count)
            owned = self.shard.share(pieces, unit)
            total += owned * size
            if self.shard.owns(unit + pieces - 1):  # the last piece holds the rest
                total -= pieces * size - count
            unit += pieces
        return total


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name}={value!r} is not an integer", hint="fix the launcher's environment") from None


def from_environment(environ: Mapping[str, str]) -> Shard:
    """The shard the launcher's variables describe (0/1 when none is set)."""
    for rank_var, count_var, launcher in LAUNCHERS:
        if rank_var in environ and count_var in environ:
            rank, count = _int(rank_var, environ[rank_var]), _int(count_var, environ[count_var])
            if rank_var.startswith("SLURM"):
                rank = (rank - _int("SLURM_ARRAY_TASK_MIN", environ.get("SLURM_ARRAY_TASK_MIN", "0"))) // max(
                    1, _int("SLURM_ARRAY_TASK_STEP", environ.get("SLURM_ARRAY_TASK_STEP", "1"))
                )
            return checked(rank, count, f"{launcher}: {rank_var}/{count_var}")
    return Shard(0, 1, "auto: no launcher variables set, whole job")


def checked(index: int, count: int, origin: str) -> Shard:
    """A Shard after range checks. Raises UsageError."""
    if count < 1 or not 0 <= index < count:
        raise UsageError(
            f"shard {index}/{count} from {origin} is out of range",
            hint="K/N needs N >= 1 and 0 <= K < N (K is 0-based)",
        )
    return Shard(index, count, origin)


def parse_shard(text: Optional[str], environ: Optional[Mapping[str, str]] = None) -> Optional[Shard]:
    """`--shard` value → Shard ("K/N" 0-based, or "auto"); None for no value.

    Raises:
        UsageError: not K/N or auto, or out of range.
    """
    if text is None or not text.strip():
        return None
    value = text.strip().lower()
    if value == "auto":
        return from_environment(os.environ if environ is None else environ)
    parts = value.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(
            f"--shard takes K/N or auto, got {text!r}", hint="e.g. --shard 0/4 (shards 0..3) or --shard auto"
        )
    return checked(int(parts[0]), int(parts[1]), "--shard")

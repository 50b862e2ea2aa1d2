"""What an `--engine ray` job sends to its workers (`decaenv.runtime.ray_engine`): images in units of
`--batch-size`, and videos indexed on the driver (packets only, nothing decoded; several videos side by side) and
cut into keyframe-aligned segments that the workers decode themselves (`decaenv.runtime.video_segments`), so the
driver's memory does not grow with a video. Names are assigned exactly as in a local run; `--skip-existing`'s
done names leave out images and single frames.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Set, Tuple

log = logging.getLogger("decaenv")
#: Most frames of a video per work unit (fewer for a short video, so that it spreads over the workers; at least
#: `--batch-size`): what one worker decodes and reconstructs at a time; whole keyframe groups up to this size,
#: so that each unit starts at a keyframe.
SEGMENT_FRAMES = 64
#: Videos indexed side by side on the driver (`_with_indexes`): reading a video's packets is mostly waiting for its
#: bytes where a cluster's inputs sit on a shared file system. At most `INDEX_AHEAD` videos, and `LISTED_AHEAD`
#: items in all, are listed ahead of the planning.
INDEX_THREADS = 8
INDEX_AHEAD = 32
LISTED_AHEAD = 4096


@dataclass
class Plan:
    """What a Ray job sends out: JSON work units of images, the videos to cut into units once the number of
    workers is known (`units`), the rows of inputs that fail before any network, and how many items
    `--skip-existing` skips."""

    images: List[str] = field(default_factory=list)
    videos: List[Tuple[str, str, Any, List[int]]] = field(default_factory=list)  # source, name, index, wanted
    failed: List[Dict[str, object]] = field(default_factory=list)
    skipped: int = 0
    image_items: int = 0

    def items(self) -> int:
        """Items the units hold (images and video frames)."""
        return self.image_items + sum(len(wanted) for *_, wanted in self.videos)

    def empty(self) -> bool:
        return not self.images and not any(wanted for *_, wanted in self.videos)

    def units(self, workers: int, batch_size: int) -> List[str]:
        """The image units and each video's segments (`segment_frames`)."""
        from decaenv.runtime.video_segments import plan_segments

        units = list(self.images)
        for source, name, index, wanted in self.videos:
            segments = plan_segments(index, wanted, segment_frames(index, len(wanted), workers, batch_size))
            if len(segments) == 1 and len(wanted) > 2 * SEGMENT_FRAMES:
                log.warning(
                    "video %s cannot be cut at its keyframes (%s): one worker reads all of it; re-encode it as "
                    "MP4/H.264 to spread it over the workers",
                    source,
                    _uncut_reason(index),
                )
            units += [json.dumps({"kind": "video", "source": source, "base": name, **asdict(s)}) for s in segments]
        return units


def segment_frames(index, wanted: int, workers: int, batch_size: int) -> int:
    """Frames per segment of a video with `wanted` frames to reconstruct: about 1/`workers` of them (a short
    video spreads over every worker), between `batch_size` and `SEGMENT_FRAMES` — or a whole keyframe group,
    when the video has enough of them to go round the workers four times: a segment cut out of a group decodes
    the group from its keyframe (x264's default group is 250 frames), a whole group decodes nothing twice."""
    frames = max(batch_size, min(SEGMENT_FRAMES, -(-wanted // max(1, workers))))
    group = -(-index.longest_group() * wanted // max(1, index.frames))  # a group's share of the wanted frames
    return group if frames < group and wanted >= 4 * max(1, workers) * group else frames


def _uncut_reason(index) -> str:
    if not index.timed:
        return "its packets have no timestamps"
    return "seeking in it is unreliable" if not index.seekable else "it has one keyframe"


def plan_work(options, done: Set[str]) -> Plan:
    """The job's work, names as in a local run: images in units of `batch_size`; videos indexed here (packets
    only, nothing decoded), to be cut into segments that the workers decode (`Plan.units`)."""
    from decaenv.runtime.inputs import expand_inputs
    from decaenv.runtime.run_types import NameRegistry
    from decaenv.runtime.table import make_row

    plan, names, images = Plan(), NameRegistry(quiet=True), []
    done_frames = _frames_by_video(done)
    for item, index in _with_indexes(expand_inputs(options.inputs, options.sample_step, decode_videos=False)):
        if item.video:
            _plan_video(plan, item, index, names, done_frames, options)
            continue
        name = names.unique(item)
        if name in done:
            plan.skipped += 1
        elif item.error is not None:
            plan.failed.append(make_row(name, str(item.source), item.frame, "failed", item.error.one_line()))
        else:
            images.append([name, str(item.source)])
            plan.image_items += 1
            if len(images) == options.batch_size:
                plan.images.append(json.dumps({"kind": "images", "items": images}))
                images = []
    if images:
        plan.images.append(json.dumps({"kind": "images", "items": images}))
    return plan


def _with_indexes(items: Iterable) -> Iterator[Tuple[Any, Any]]:
    """(item, its video's index or the InputError that indexing raised; None for a picture) for each item, in
    order, the videos indexed `INDEX_THREADS` at a time up to `INDEX_AHEAD` videos ahead."""
    listed: Deque[Tuple[Any, Optional[Future]]] = deque()
    videos = 0
    with ThreadPoolExecutor(INDEX_THREADS, thread_name_prefix="decaenv-index") as pool:
        try:
            for item in items:
                listed.append((item, pool.submit(_indexed, item.source) if item.video else None))
                videos += bool(item.video)
                while listed and (listed[0][1] is None or videos > INDEX_AHEAD or len(listed) > LISTED_AHEAD):
                    first, future = listed.popleft()
                    videos -= future is not None
                    yield first, None if future is None else future.result()
            for first, future in listed:
                yield first, None if future is None else future.result()
        finally:  # (the planning stopped early: the videos not started yet are not read)
            pool.shutdown(wait=True, cancel_futures=True)


def _indexed(source):
    """`index_video(source)`, or the InputError it raised (a failed video is a row, not the job's end)."""
    from decaenv.errors import InputError
    from decaenv.runtime.video_segments import index_video

    try:
        return index_video(source)
    except InputError as exc:
        return exc


def _plan_video(plan: Plan, item, index, names, done_frames: Dict[str, Set[int]], options) -> None:
    from decaenv.errors import InputError
    from decaenv.runtime.table import make_row
    from decaenv.runtime.video_segments import wanted_frames

    if isinstance(index, InputError):  # named like a local run's failed video: the video's own name
        plan.failed.append(make_row(names.unique_name(item.name), str(item.source), None, "failed", index.one_line()))
        return
    base = names.video_name(item.source, item.name)
    wanted = wanted_frames(index, options.sample_step, done_frames.get(base, set()))
    plan.skipped += len(range(0, index.frames, options.sample_step)) - len(wanted)
    plan.videos.append((str(item.source), base, index, wanted))


def _frames_by_video(done: Set[str]) -> Dict[str, Set[int]]:
    """{video name: its frame indices} of the done names that are video frames (`<video>_frame<index>`)."""
    out: Dict[str, Set[int]] = {}
    for name in done:
        video, sep, index = name.rpartition("_frame")
        if sep and index.isdigit():
            out.setdefault(video, set()).add(int(index))
    return out

"""`decaenv reconstruct` with the outputs beyond DECA's demo: every face of a picture (`--faces all`),
temporal smoothing of video frames (`--smooth`), the per-frame renders assembled into a video
(`--save video`) and an HTML report of the run (`--save report`). A `pipeline.Reconstructor` whose hooks
(`items`, `face_box`, `filter_codes`, `run_model`, `save`, `run`) add these; without them it behaves as its base.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from decaenv.errors import InputError, UsageError
from decaenv.runtime.inputs import Item
from decaenv.runtime.pipeline import Reconstructor
from decaenv.runtime.run_types import ItemOutcome, RunSummary

if TYPE_CHECKING:
    from decaenv.runtime.detectors.base import Detection


@dataclass
class ExtraOptions:
    """`--faces`, `--smooth`, `--smooth-alpha` (see docs/commands/reconstruct.md)."""

    faces: str = "largest"
    smooth: bool = False
    smooth_alpha: float = 0.5


@dataclass(frozen=True)
class FaceItem(Item):
    """One face of a picture with several (`--faces all`): the detection is kept, not redone."""

    detection: Optional[Detection] = None
    face: int = 0


class ExtendedReconstructor(Reconstructor):
    """A Reconstructor with `ExtraOptions` and the `video` / `report` save kinds.

    Raises:
        UsageError: `--faces all` with video inputs or with `--smooth` (faces are not tracked over frames).
    """

    def __init__(self, options, extras: Optional[ExtraOptions] = None, **kwargs):
        from decaenv.runtime.faces import check_faces
        from decaenv.runtime.smoothing import VideoSmoother
        from decaenv.runtime.video_render import VideoFrames, video_sources

        extras = extras or ExtraOptions()
        self.faces = check_faces(extras.faces)
        self.videos = video_sources(options.inputs)
        if self.faces == "all" and (self.videos or extras.smooth):
            raise UsageError(
                "--faces all works on images only (faces are not tracked across video frames)",
                hint="drop --faces all for videos, or --smooth",
            )
        self.smoother = VideoSmoother(extras.smooth_alpha) if extras.smooth else None
        super().__init__(options, **kwargs)
        #: What keeps a shard's run-level files (video, report) apart from the other shards' in one folder.
        self.suffix = self.options.shard.suffix if self.options.shard is not None else ""
        self.frames = VideoFrames(self.out_dir, options.sample_step, self.suffix) if "video" in self.kinds else None
        self.seconds: Dict[str, float] = {}
        self._spent: Dict[int, float] = {}
        self.run_files: List[str] = []

    # -- items -------------------------------------------------------------------------------------------
    def items(self, needed=None, on_video=None):
        if self.faces == "all":  # names of their own (images only: `--faces all` refuses videos)
            return self._split_faces(super().items())
        return super().items(needed, on_video)

    def _my_items(self, names, base: bool = False):
        """The base's items; a shard's video frames are noted for its video (`VideoFrames.own`)."""
        for name, item in super()._my_items(names, base):
            if self.frames is not None and not base and item.frame is not None:
                self.frames.own(item.source, item.frame)
            yield name, item

    @property
    def needs_done_frames(self) -> bool:
        """The smoother filters over every frame, done ones included."""
        return self.smoother is not None

    def _split_faces(self, items):
        """Each picture → one item per detected face, named `<name>_face<k>` (largest face first)."""
        from decaenv.runtime.inputs import find_landmark_file

        detector = self.detector.detector if self.detector else None
        for item in items:
            if (
                item.error is not None
                or detector is None
                or detector.name == "none"
                or find_landmark_file(item.source) is not None
            ):
                yield item
                continue
            try:
                with self.timer.stage("read"):
                    image = item.load()
                with self.timer.stage("detect"):
                    found = detector.detect_faces(image)
            except InputError as exc:
                yield Item(item.name, item.source, error=exc)
                continue
            if not found:
                yield Item(
                    item.name,
                    item.source,
                    error=InputError(
                        f"no face found in {item.label} (detector {detector.name})",
                        hint="if the image is already a face crop pass --iscrop false",
                    ),
                )
            for k, detection in enumerate(found):
                yield FaceItem(f"{item.name}_face{k}", item.source, pixels=image, detection=detection, face=k)

    @property
    def prepares_in_parallel(self) -> bool:
        """Not with `--smooth`: the smoother filters boxes in frame order."""
        return self.smoother is None

    @property
    def prepares_in_processes(self) -> bool:
        """Not with `--faces all` (its items carry faces found here) nor `--smooth`."""
        return self.faces != "all" and super().prepares_in_processes

    @property
    def keeps_images(self) -> bool:
        """The video kind draws its panels over each frame."""
        return self.frames is not None or super().keeps_images

    def prepared_elsewhere(self, item, seconds) -> None:
        super().prepared_elsewhere(item, seconds)
        self._spent[id(item)] = seconds.get("detect", 0.0)

    def face_box(self, image, item):
        start = time.perf_counter()
        if isinstance(item, FaceItem) and item.detection is not None:
            detector = self.detector.name if self.detector is not None else "none"
            source = item.detection.detector or detector
            found = (item.detection.box, item.detection.kind, f"detector:{source}:face{item.face}")
        else:
            found = super().face_box(image, item)
        if self.smoother is not None:
            found = (self.smoother.box(item, found[0]),) + tuple(found[1:])
        self._spent[id(item)] = time.perf_counter() - start
        return found

    # -- model and outputs -------------------------------------------------------------------------------
    def filter_codes(self, codedict, prepared):
        if self.smoother is None:
            return codedict
        return self.smoother.codedict(codedict, [p[1] for p in prepared])

    def run_model(self, prepared):
        start = time.perf_counter()
        result = super().run_model(prepared)
        share = (time.perf_counter() - start) / max(1, len(prepared))
        for p in prepared:
            self._spent[id(p[1])] = self._spent.get(id(p[1]), 0.0) + share
        return result

    def save(self, result, index: int, name: str, item, crop, image) -> ItemOutcome:
        start = time.perf_counter()
        outcome = super().save(result, index, name, item, crop, image)
        if self.frames is not None and item.frame is not None and outcome.status == "ok":
            from decaenv.runtime.video_render import overlay_panels

            try:
                with self.timer.stage("render"):
                    panels = overlay_panels(self.deca, result["geometry"], result["detail"], index, crop, image)
                self.frames.add(item.source, item.frame, panels)
            except (RuntimeError, OSError) as exc:
                text = " ".join(str(exc).split())[:200]
                outcome = ItemOutcome(
                    name, item.label, "failed", f"video frame failed: {text}", outcome.files, crop=crop.source
                )
        self.seconds[name] = self._spent.pop(id(item), 0.0) + time.perf_counter() - start
        return outcome

    def run(self, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> RunSummary:
        from decaenv.runtime.report import report_name, write_report

        if self.frames is not None:
            for video in self.videos:
                self.frames.watch(video)
        try:
            summary = super().run(on_item)
        except BaseException:
            if self.frames is not None:
                self.frames.discard()
            raise
        if self.frames is not None:
            with self.timer.stage("save"):
                self.run_files += self.frames.finish()
        if "report" in self.kinds:
            write_report(summary, self.seconds, self.run_files, self.suffix)
            self.run_files.append(report_name(self.suffix))
        return summary

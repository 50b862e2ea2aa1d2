"""`decaenv transfer` as a library call: a target's expression and jaw pose on a source's identity and detail
(DECA's `demo_transfer.py`), for one target image, a folder of them, or a video.

DECA's composition (deca-spec §8, demo_transfer): the source's codes with `exp` and `pose[:, 3:]` (jaw) taken
from the target; shape, tex, detail, light, cam and the global pose stay the source's (`pose=True` also takes
the target's global pose). Decoding the composed codes makes the detail decoder see the target's expression
and jaw with the source's detail code, as in DECA. The transferred mesh keeps the source's `uv_texture_gt`.

Files (DECA's names): `<name>_animation.jpg` (inputs | source detail shape | transferred detail shape),
`<name>/reconstruction/` and `<name>/animation/` with the `--save` kinds. `<name>` is the source's name for a
single target image (DECA), else `<source>_<target item>`. A video target gives `<source>_<video>_animation.mp4`
at the video's frame rate divided by `--sample-step` instead of one strip per frame.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from decaenv.errors import DecaenvError, InputError, UsageError
from decaenv.paths import DataDir
from decaenv.runtime.run_types import ItemOutcome, RunSummary

if TYPE_CHECKING:
    from decaenv.runtime.video_out import Mp4Writer

log = logging.getLogger("decaenv")
#: Panels of DECA's `_animation.jpg`, in order.
STRIP_KEYS = ("inputs", "shape_detail_images", "transferred_shape")
SIDES = ("reconstruction", "animation")


@dataclass
class TransferOptions:
    """Everything `decaenv transfer` takes (see docs/commands/transfer.md)."""

    source: Path
    targets: Sequence[Path]
    out_dir: Path
    data_dir: Optional[DataDir] = None
    device: str = "auto"
    batch_size: int = 8
    detector: str = "auto"
    rasterizer: str = "auto"
    iscrop: bool = True
    use_tex: bool = False
    extract_tex: bool = True
    tex_type: str = "BFM"
    sample_step: int = 1
    pose: bool = False
    save: str = "vis"
    trusted_sha256: Optional[str] = None
    precision: str = "fp32"  # the model options of `model_setup.build_deca` (DECA's eager fp32 networks)
    graph: str = "off"


@dataclass
class TransferSummary(RunSummary):
    """The run, plus the videos written for video targets."""

    videos: List[str] = field(default_factory=list)
    source: str = ""
    source_files: List[str] = field(default_factory=list)

    def to_json(self) -> dict:
        data = super().to_json()
        data.update(command="transfer", source=self.source, source_files=self.source_files, videos=self.videos)
        return data


def compose_codes(source: Dict, target: Dict, pose: bool = False) -> Dict:
    """DECA's expression transfer on codes.

    Args:
        source: codedict of one source face (batch 1) or of as many as the target.
        target: codedict of B target faces.
        pose: also take the target's global head pose (`pose[:, :3]`).
    Returns:
        A new codedict of batch B: the source's codes with the target's `exp` and jaw pose (`pose[:, 3:]`).
    """
    batch = target["exp"].shape[0]
    out = {k: (v.expand(batch, *v.shape[1:]) if v.shape[0] == 1 else v).clone() for k, v in source.items()}
    out["exp"] = target["exp"].clone()
    out["pose"][:, 3:] = target["pose"][:, 3:]
    if pose:
        out["pose"][:, :3] = target["pose"][:, :3]
    return out


def _one(d: Dict, index: int) -> Dict:
    return {k: v[index : index + 1] for k, v in d.items()}


class Transfer:
    """One transfer run (source encoded once; targets streamed in batches).

    Args:
        options: the run. deca: an already built model (else built from the options).
    """

    def __init__(self, options: TransferOptions, deca=None):
        from decaenv.runtime.faces import make_detector
        from decaenv.runtime.model_setup import build_deca
        from decaenv.runtime.run_types import prepare_out_dir
        from decaenv.runtime.save_kinds import parse_save
        from decaenv.runtime.timing import StageTimer

        if options.batch_size < 1 or options.sample_step < 1:
            raise UsageError("--batch-size and --sample-step must be at least 1")
        self.options = options
        self.kinds = parse_save(options.save)
        self.out_dir = prepare_out_dir(options.out_dir)
        self.deca = deca if deca is not None else build_deca(options)
        self.timer = StageTimer(str(self.deca.device))
        self.deca.timer = self.timer
        self.detector = make_detector(options.iscrop, options.detector, str(self.deca.device), options.data_dir)
        self._video: Optional[Tuple[Path, Mp4Writer]] = None  # (source video, its writer) while one is open

    @property
    def _detector(self):
        return self.detector.detector if self.detector else None

    # -- source ------------------------------------------------------------------------------------
    def load_source(self):
        """Crop, encode and decode the source. Raises InputError (the whole run cannot go on without it)."""
        import torch

        from decaenv.runtime.faces import encode_faces, load_one

        with self.timer.stage("detect"):
            face = load_one(self.options.source, iscrop=self.options.iscrop, detector=self._detector, what="source")
        with torch.no_grad():
            codes = encode_faces(self.deca, [face])
            opdict, visdict = self.deca.decode(codes)
        self.source = face
        self.source_codes = {k: v.clone() for k, v in codes.items()}
        self.source_opdict, self.source_visdict = opdict, visdict
        self.source_panels = {k: visdict[k] for k in STRIP_KEYS[:2]}
        return face

    # -- the run -----------------------------------------------------------------------------------
    def run(self, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> TransferSummary:
        """Transfer onto every target item; `on_item` is called after each."""
        from decaenv.runtime.inputs import batched, classify, expand_inputs

        start = time.perf_counter()
        self.summary = TransferSummary(
            device=str(self.deca.device),
            rasterizer=self.deca.rasterizer.name,
            detector=self.detector.name if self.detector else "none (--iscrop false)",
            out_dir=str(self.out_dir),
        )
        self.on_item = on_item
        source = self.load_source()
        self.summary.source = str(source.item.source)
        targets = [Path(t).expanduser() for t in self.options.targets]
        self.single = len(targets) == 1 and classify(targets[0]) in ("image", "unknown")
        if self.kinds and set(self.kinds) - {"vis"}:
            self.summary.source_files = self._save_side(
                source.name, "reconstruction", self.source_codes, self.source_opdict, self.source_visdict, 0, source
            )
        try:
            for batch in batched(expand_inputs(targets, self.options.sample_step), self.options.batch_size):
                self._run_batch(batch)
        except BaseException:  # Ctrl-C or a bug: no half-written video is left behind
            if self._video is not None:
                self._video[1].abort()
                self._video = None
            raise
        self._close_video()
        self.summary.seconds = time.perf_counter() - start
        self.summary.stages = self.timer.as_dict()
        return self.summary

    def _report(self, outcome: ItemOutcome) -> None:
        self.summary.items.append(outcome)
        if self.on_item is not None:
            self.on_item(outcome)

    def _name(self, item) -> str:
        return self.source.name if self.single else f"{self.source.name}_{item.name}"

    def _run_batch(self, batch) -> None:
        """Prepare, encode, compose, decode and save one batch; outcomes (and video frames) in item order."""
        import torch

        from decaenv.runtime.faces import encode_faces, prepare

        steps: list = []  # per item: its faces, or the outcome of its failure
        for item in batch:
            try:
                with self.timer.stage("detect"):
                    steps.append(prepare(item, self._name(item), iscrop=self.options.iscrop, detector=self._detector))
            except InputError as exc:
                steps.append(ItemOutcome(self._name(item), item.label, "failed", exc.one_line()))
        faces = [f for step in steps if isinstance(step, list) for f in step]
        result, error = None, ""
        if faces:
            try:
                with torch.no_grad():
                    composed = compose_codes(self.source_codes, encode_faces(self.deca, faces), self.options.pose)
                    opdict, visdict = self.deca.decode(composed)
                opdict["uv_texture_gt"] = self.source_opdict["uv_texture_gt"].expand(len(faces), -1, -1, -1)
                result = (composed, opdict, visdict)
            except RuntimeError as exc:
                error = f"transfer failed: {' '.join(str(exc).split())[:300]}"
        index = 0
        for item, step in zip(batch, steps):
            if isinstance(step, ItemOutcome):
                self._video_frame(item, None)
                self._report(step)
                continue
            for face in step:
                if result is None:
                    self._video_frame(item, None)
                    self._report(ItemOutcome(face.name, item.label, "failed", error, crop=face.crop.source))
                else:
                    self._report(self._save(face, *result, index))
                index += 1

    # -- outputs -----------------------------------------------------------------------------------
    def strip(self, visdict: Optional[Dict], index: int) -> np.ndarray:
        """DECA's `_animation.jpg` panels for one target (a black third panel when `visdict` is None)."""
        import torch

        from decaenv.runtime.vis import visualize_grid

        panels = dict(self.source_panels)
        shape = visdict["shape_detail_images"][index : index + 1] if visdict is not None else None
        panels["transferred_shape"] = shape if shape is not None else torch.zeros_like(panels["inputs"])
        return visualize_grid(panels)

    def _save(self, face, codes, opdict, visdict, index: int) -> ItemOutcome:
        from decaenv.runtime.writers import OutputSet, image_writer, write_item

        written: List[str] = []
        try:
            with self.timer.stage("save"):
                if "vis" in self.kinds:
                    if face.item.frame is not None:
                        self._video_frame(face.item, self.strip(visdict, index))
                    else:
                        files = {f"{face.name}_animation.jpg": (False, image_writer(self.strip(visdict, index)))}
                        written += [
                            str(p.relative_to(self.out_dir))
                            for p in write_item(OutputSet(self.out_dir, face.name), files)
                        ]
                if set(self.kinds) - {"vis"}:
                    written += self._save_side(face.name, "animation", codes, opdict, visdict, index, face)
        except DecaenvError as exc:
            return ItemOutcome(face.name, face.item.label, "failed", exc.one_line(), crop=face.crop.source)
        return ItemOutcome(face.name, face.item.label, "ok", "", written, crop=face.crop.source)

    def _save_side(self, name: str, side: str, codes, opdict, visdict, index: int, face) -> List[str]:
        """The `--save` kinds (other than vis) of one side into `<name>/<side>/`, DECA's file names."""
        from decaenv.runtime.export import ItemContext, item_files
        from decaenv.runtime.writers import OutputSet, write_item

        depth = None
        if "depth" in self.kinds:
            depth = self.deca.render.render_depth(opdict["trans_verts"][index : index + 1])
        crop = face.crop
        ctx = ItemContext(
            name=name,
            source=str(face.item.source),
            frame=face.item.frame,
            tform=crop.tform,
            original_size=crop.original_size,
            crop_source=crop.source,
            box=crop.box,
        )
        kinds = [k for k in self.kinds if k != "vis"]
        files = item_files(
            self.deca, kinds, _one(codes, index), _one(opdict, index), _one(visdict, index), None, depth, 0, ctx
        )
        written = write_item(OutputSet(self.out_dir / name, side), files)
        return [str(p.relative_to(self.out_dir)) for p in written]

    # -- video targets -----------------------------------------------------------------------------
    def _video_frame(self, item, strip: Optional[np.ndarray]) -> None:
        """Append one strip to the video of the item's source (a frame for a failed item keeps the timing)."""
        if item.frame is None or "vis" not in self.kinds:
            return
        from decaenv.runtime.inputs import image_name
        from decaenv.runtime.video_out import Mp4Writer, video_rate

        if self._video is None or self._video[0] != item.source:
            self._close_video()
            rate = video_rate(item.source) / self.options.sample_step
            path = self.out_dir / f"{self.source.name}_{image_name(Path(item.source))}_animation.mp4"
            self._video = (item.source, Mp4Writer(path, rate))
        if strip is None:
            strip = self.strip(None, 0)
        self._video[1].add(strip)

    def _close_video(self) -> None:
        if self._video is None:
            return
        writer = self._video[1]
        self._video = None
        try:
            done = writer.close()
        except (OSError, DecaenvError) as exc:
            writer.abort()
            raise DecaenvError(f"cannot write {writer.path}: {exc}") from exc
        if done is not None:
            self.summary.videos.append(str(done.relative_to(self.out_dir)))


def transfer(options: TransferOptions, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> TransferSummary:
    """Run `decaenv transfer` (see `Transfer`)."""
    return Transfer(options).run(on_item)

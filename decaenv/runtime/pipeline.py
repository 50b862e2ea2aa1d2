"""`decaenv reconstruct` as a library call: inputs → crops → batched DECA → DECA's output files.

Per-item problems (unreadable file, no face, broken video, a file that cannot be written, a `--render-orig`
that would not fit in memory) are recorded and the item skipped; the run goes on. One run at a time writes
into an output folder (`decaenv.runtime.guards.OutputLock`). Crops of several images are encoded and decoded together (`batch_size`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from decaenv.errors import DecaenvError, InputError, UsageError
from decaenv.runtime.guards import OutputLock, check_render_orig_memory

log = logging.getLogger("decaenv")


@dataclass
class ReconstructOptions:
    """Everything `decaenv reconstruct` takes (see docs/commands/reconstruct.md)."""

    inputs: Sequence[Path]
    out_dir: Path
    data_dir: Optional[Path] = None
    device: str = "auto"
    batch_size: int = 1
    detector: str = "auto"
    rasterizer: str = "auto"
    iscrop: bool = True
    render_orig: bool = False
    use_tex: bool = False
    extract_tex: bool = True
    tex_type: str = "BFM"
    sample_step: int = 1
    save: Sequence[str] = ("vis",)
    skip_existing: bool = False
    trusted_sha256: Optional[str] = None


@dataclass
class ItemOutcome:
    """What happened to one item: status "ok", "failed" or "skipped"."""

    name: str
    source: str
    status: str
    message: str = ""
    files: List[str] = field(default_factory=list)
    crop: str = ""


@dataclass
class RunSummary:
    """The whole run."""

    items: List[ItemOutcome] = field(default_factory=list)
    seconds: float = 0.0
    stages: Dict[str, float] = field(default_factory=dict)
    device: str = ""
    detector: str = ""
    rasterizer: str = ""
    out_dir: str = ""

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def failed(self) -> bool:
        return self.count("failed") > 0

    def fallbacks(self) -> List[str]:
        """Names of the items cropped by `auto`'s fallback detector (FAN found no face, MTCNN did)."""
        from decaenv.runtime.detectors import FALLBACK_NOTE

        return [i.name for i in self.items if FALLBACK_NOTE in i.crop]

    def fallback_line(self) -> str:
        """"FAN found no face in 2 image(s) (a, b): cropped with MTCNN instead", or "" when none."""
        names = self.fallbacks()
        if not names:
            return ""
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        return (f"FAN found no face in {len(names)} image(s) ({shown}): cropped with MTCNN instead, so those "
                "crops differ from DECA's")

    def to_json(self) -> dict:
        return {"schema": 1, "ok": self.count("ok"), "failed": self.count("failed"), "skipped": self.count("skipped"),
                "seconds": round(self.seconds, 3), "stages": self.stages, "device": self.device,
                "detector": self.detector, "detector_fallbacks": self.fallbacks(), "rasterizer": self.rasterizer,
                "out_dir": self.out_dir, "items": [asdict(i) for i in self.items]}


def prepare_out_dir(out_dir: Path) -> Path:
    """Create the output folder and prove it is writable (a throw-away file).

    Raises:
        UsageError: it is a file, cannot be created, or cannot be written.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output folder {out_dir} is a file", hint="pass a folder to -o")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".decaenv-write-test-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"output folder {out_dir} is not writable: {exc.strerror or exc}",
                         hint="choose another folder with -o, or fix its permissions") from exc
    return out_dir.resolve()


class Reconstructor:
    """Runs the pipeline for one set of options (a built DECA can be reused across runs).

    Args:
        options: the run. deca: an already built model (else built from the options). timer: stage timer.
    """

    def __init__(self, options: ReconstructOptions, deca=None, timer=None, detector_choice=None):
        from decaenv.runtime.export import parse_save
        from decaenv.runtime.timing import StageTimer

        if options.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {options.batch_size}")
        if options.sample_step < 1:
            raise UsageError(f"--sample-step must be at least 1, got {options.sample_step}")
        self.options = options
        self.kinds = parse_save(options.save if isinstance(options.save, str) else ",".join(options.save))
        self.out_dir = prepare_out_dir(options.out_dir)
        self.deca = deca if deca is not None else build_deca(options)
        self.timer = timer or StageTimer(str(self.deca.device))
        self.deca.timer = self.timer
        self.detector = None
        if options.iscrop:
            from decaenv.runtime.detectors import create_detector

            self.detector = detector_choice or create_detector(
                options.detector, str(self.deca.device), data_dir=options.data_dir)
            log.info("face detector: %s (%s)", self.detector.name, self.detector.reason)
        self._names: Dict[str, int] = {}

    # -- one run ---------------------------------------------------------------------------------------
    def run(self, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> RunSummary:
        """Process every input; `on_item` is called after each item."""
        from decaenv.runtime.inputs import batched

        start = time.perf_counter()
        summary = RunSummary(device=str(self.deca.device), rasterizer=f"{self.deca.backend}",
                             detector=self.detector.name if self.detector else "none (--iscrop false)",
                             out_dir=str(self.out_dir))

        def report(outcome: ItemOutcome) -> None:
            summary.items.append(outcome)
            if on_item is not None:
                on_item(outcome)

        with OutputLock(self.out_dir):
            for batch in batched(self.items(), self.options.batch_size):
                self._run_batch(batch, report)
        summary.seconds = time.perf_counter() - start
        summary.stages = self.timer.as_dict()
        return summary

    def items(self):
        """The work items of the run, in order (a subclass may split or extend them)."""
        from decaenv.runtime.inputs import expand_inputs

        return expand_inputs(self.options.inputs, self.options.sample_step)

    def face_box(self, image, item):
        """Where to crop one item: (box or None, box kind, origin) — `datasets.find_face`. Raises InputError."""
        from decaenv.runtime.datasets import find_face

        return find_face(image, item.source if item.frame is None else None, iscrop=self.options.iscrop,
                         label=item.label, detector=self.detector.detector if self.detector else None)

    def filter_codes(self, codedict, prepared):
        """The batch's codes before decoding (identity here; `--smooth` filters them over video frames)."""
        return codedict

    def _unique_name(self, name: str) -> str:
        count = self._names.get(name, 0)
        self._names[name] = count + 1
        if count == 0:
            return name
        unique = f"{name}_{count + 1}"
        log.warning("output name %s is used by an earlier input: writing this one as %s", name, unique)
        return unique

    def prepare(self, item, report):
        """Load and crop one item; returns (name, item, crop, image) or None after reporting a failure/skip."""
        from decaenv.runtime.crop import make_crop
        from decaenv.runtime.export import expected_files

        name = self._unique_name(item.name)
        if self.options.skip_existing and item.error is None:
            expected = expected_files(self.kinds, name, self.options.render_orig, self.options.use_tex)
            from decaenv.runtime.writers import existing_outputs

            if expected and existing_outputs(self.out_dir, name, expected):
                report(ItemOutcome(name, item.label, "skipped", "outputs exist (--skip-existing)"))
                return None
        try:
            with self.timer.stage("read"):
                image = item.load()
            with self.timer.stage("detect"):
                box, kind, origin = self.face_box(image, item)
            with self.timer.stage("crop"):
                crop = make_crop(image, box, kind, origin)
        except InputError as exc:
            report(ItemOutcome(name, item.label, "failed", exc.one_line()))
            return None
        return name, item, crop, image

    def _run_batch(self, batch, report) -> None:
        import torch

        prepared = [p for p in (self.prepare(item, report) for item in batch) if p is not None]
        if not prepared:
            return
        try:
            result = self.run_model(prepared)
        except RuntimeError as exc:  # e.g. out of memory: the batch fails, the run goes on
            text = " ".join(str(exc).split())[:300]
            hint = " — try a smaller --batch-size" if "memory" in text.lower() else ""
            for name, item, _, _ in prepared:
                report(ItemOutcome(name, item.label, "failed", f"reconstruction failed: {text}{hint}"))
            if self.deca.device.type == "cuda":
                torch.cuda.empty_cache()
            return
        for index, (name, item, crop, image) in enumerate(prepared):
            report(self.save(result, index, name, item, crop, image))

    def run_model(self, prepared):
        """Encode and decode prepared items together; returns the batch's dicts (codedict, opdict, visdict, …)."""
        import torch

        from decaenv.runtime.timing import maybe_stage

        deca = self.deca
        with torch.no_grad():
            images = torch.from_numpy(np.stack([p[2].image for p in prepared])).to(deca.device)
            codedict = self.filter_codes(deca.encode(images), prepared)
            geometry = deca.geometry(codedict)
            detail = deca.detail(codedict, geometry["verts"], geometry["albedo"])
            size = deca.image_size
            panels = "vis" in self.kinds or "images" in self.kinds
            texture = any(k in self.kinds for k in ("obj", "detail-obj", "mat", "detail-uv", "glb", "ply"))
            additions, visdict = deca.views(geometry, detail, codedict["images"], size, size,
                                            return_vis=panels, texture=texture)
            opdict = {k: geometry[k] for k in ("verts", "trans_verts", "landmarks2d", "landmarks3d_world")}
            opdict.update({k: detail[k] for k in ("uv_texture", "normals", "uv_detail_normals", "displacement_map")})
            opdict.update(additions)
            if deca.flametex is not None:
                opdict["albedo"] = geometry["albedo"]
            depth = None
            if "depth" in self.kinds:
                with maybe_stage(self.timer, "render"):
                    depth = deca.render.render_depth(geometry["trans_verts"])
        return {"codedict": codedict, "geometry": geometry, "detail": detail, "opdict": opdict,
                "visdict": visdict, "depth": depth}

    def _original_visdict(self, result, index: int, crop, image: np.ndarray):
        """The visdict rendered at the original image size for one item (DECA's render_orig decode)."""
        import torch

        from decaenv.runtime.camera import crop_to_original_tform
        from decaenv.runtime.datasets import original_image_float

        deca = self.deca
        check_render_orig_memory(image.shape[0], image.shape[1],
                                 deca.device.type if deca.device.type != "cuda" else str(deca.device),
                                 name="--render-orig")
        one = lambda d: {k: v[index:index + 1] for k, v in d.items()}  # noqa: E731
        original = torch.from_numpy(original_image_float(image))[None].to(deca.device)
        tform = crop_to_original_tform(torch.tensor(crop.tform, dtype=torch.float32)[None]).to(deca.device)
        h, w = image.shape[:2]
        with torch.no_grad():
            geometry = deca.to_original(one(result["geometry"]), tform, h, w)
            _, visdict = deca.views(geometry, one(result["detail"]), original, h, w, background=original,
                                    texture=False)
        visdict["inputs"] = original
        return visdict

    def save(self, result, index: int, name: str, item, crop, image) -> ItemOutcome:
        """Write one item's files (atomically, all or nothing) and say how it went."""
        from decaenv.runtime.export import ItemContext, item_files
        from decaenv.runtime.writers import OutputSet, write_item

        ctx = ItemContext(name=name, source=str(item.source), frame=item.frame, tform=crop.tform,
                          original_size=crop.original_size, crop_source=crop.source, box=crop.box)
        try:
            orig = None
            if self.options.render_orig and ("vis" in self.kinds or "images" in self.kinds):
                with self.timer.stage("render"):
                    orig = self._original_visdict(result, index, crop, image)
            with self.timer.stage("save"):
                files = item_files(self.deca, self.kinds, result["codedict"], result["opdict"], result["visdict"],
                                   orig, result["depth"], index, ctx)
                written = write_item(OutputSet(self.out_dir, name), files)
        except DecaenvError as exc:
            return ItemOutcome(name, item.label, "failed", exc.one_line(), crop=crop.source)
        except RuntimeError as exc:
            return ItemOutcome(name, item.label, "failed", f"rendering failed: {' '.join(str(exc).split())[:300]}",
                               crop=crop.source)
        return ItemOutcome(name, item.label, "ok", "", [str(p.relative_to(self.out_dir)) for p in written],
                           crop=crop.source)


def build_deca(options: ReconstructOptions):
    """The DECA model for a run (config from the options)."""
    from decaenv.runtime.config import get_cfg_defaults
    from decaenv.runtime.deca import DECA, check_data_dir

    cfg = get_cfg_defaults()
    data_dir = Path(options.data_dir) if options.data_dir else None
    if data_dir is not None:
        check_data_dir(data_dir)
        cfg.data_dir = str(data_dir)
    cfg.model.use_tex = options.use_tex
    cfg.model.extract_tex = options.extract_tex
    cfg.model.tex_type = options.tex_type
    return DECA(config=cfg, device=options.device, rasterizer=options.rasterizer,
                trusted_sha256=options.trusted_sha256)


def reconstruct(options: ReconstructOptions, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> RunSummary:
    """Run `decaenv reconstruct` (see `Reconstructor`)."""
    return Reconstructor(options).run(on_item)

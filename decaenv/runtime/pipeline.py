"""`decaenv reconstruct` as a library call: inputs → crops → batched DECA → DECA's output files.

Per-item problems (unreadable file, no face, broken video, a file that cannot be written, a `--render-orig`
that would not fit in memory) are recorded and the item skipped; the run goes on. One run at a time writes
into an output folder (`decaenv.runtime.guards.OutputLock`). Crops of several images are encoded and decoded
together (`batch_size`). The run's types are in `run_types`, the model's construction in `model_setup`, how a
batch's items are prepared (threads, worker processes) in `input_side`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import (
    TYPE_CHECKING,
    Callable,
    ContextManager,
    Dict,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

import numpy as np

from decaenv.errors import DecaenvError, InputError, UsageError
from decaenv.runtime.guards import OutputLock, check_render_orig_memory
from decaenv.runtime.input_side import InputSide
from decaenv.runtime.model_setup import build_deca, check_speed_options
from decaenv.runtime.run_types import (
    MAX_KEPT_FAILURES,
    ItemOutcome,
    NameRegistry,
    ReconstructOptions,
    RunSummary,
    item_context,
    prepare_out_dir,
)

if TYPE_CHECKING:
    from pathlib import Path

    from decaenv.runtime.batch_buffers import InputBatches
    from decaenv.runtime.detectors import DetectorChoice
    from decaenv.runtime.input_pool import InputPool
    from decaenv.runtime.input_procs import ProcessInputPool
    from decaenv.runtime.shard import Ownership, Shard

log = logging.getLogger("decaenv")


class Reconstructor(InputSide):
    """Runs the pipeline for one set of options (a built DECA can be reused across runs).

    Args:
        options: the run. deca: an already built model (else built from the options). timer: stage timer.
        lazy: build nothing yet (`work_left` can then decide, before any network loads, that a resumed run
            is finished); `load` or the first batch builds the model and the detector.
    """

    def __init__(self, options: ReconstructOptions, deca=None, timer=None, detector_choice=None, lazy: bool = False):
        from decaenv.runtime.save_kinds import parse_save
        from decaenv.runtime.timing import StageTimer

        if options.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {options.batch_size}")
        if options.sample_step < 1:
            raise UsageError(f"--sample-step must be at least 1, got {options.sample_step}")
        check_speed_options(options)
        from decaenv.runtime.overlap import parse_input_workers

        self._input_kind, self._input_count = parse_input_workers(options.input_workers)
        self.options = options
        self.kinds = parse_save(options.save if isinstance(options.save, str) else ",".join(options.save))
        self.out_dir = prepare_out_dir(options.out_dir)
        self.table = None
        self._done: frozenset = frozenset()
        if "table" in self.kinds:
            from decaenv.runtime.table import TableWriter, table_path

            suffix, split = (options.shard.suffix if options.shard is not None else ""), None
            if options.shard is not None and suffix:  # a shard of a split: how the split deals video frames
                shard = self._continued_split(options.shard, table_path(self.out_dir, suffix))
                self.options = options = dataclasses.replace(options, shard=shard)
                split = shard.split
            self.table = TableWriter(table_path(self.out_dir, suffix), options.table_landmarks, split)
            if options.skip_existing:
                self._done = frozenset(self.table.done_names())
        #: Whether failed items get table rows (kept in `_failure_rows` until reported): with a table, or for a
        #: caller that collects the rows itself (a Ray worker).
        self.failure_rows = self.table is not None
        self._deca, self._timer, self._detector_choice = deca, timer, detector_choice
        self._loaded = False
        self.timer = timer or StageTimer(None)  # the device's timer once loaded
        self.detector: Optional[DetectorChoice] = None
        self._names = NameRegistry()
        self.precision_check: Optional[dict] = None  # bf16 vs eager fp32 on the first batch's first items
        # failed items' table rows, added when their outcome is reported (in input order; `_table_failure`)
        self._failure_rows: Dict[str, dict] = {}
        self._batches: Optional[InputBatches] = None  # made by the first batch
        self._load_lock = threading.Lock()
        self._detect_guard: ContextManager = contextlib.nullcontext()  # a lock for detectors not thread-safe
        self._input_pool: Union[InputPool, ProcessInputPool, None] = None  # set for the duration of `run`
        self._processes: Optional[ProcessInputPool] = None  # the input worker processes, kept between runs
        self._item_writers: Optional[ThreadPoolExecutor] = None  # set for the duration of `run` (`_write_workers`)
        self._listed: Optional[Tuple[Optional[int]]] = None  # `expected_items`' last answer, for the run after it
        self._device_name: Optional[str] = None  # the model's device, known once `load` begins
        self._early_spec: Optional[tuple] = None  # (`_chosen_process_spec`,) of workers started early, for the run
        if not lazy:
            self.load()

    def _continued_split(self, shard: "Shard", own: Path) -> "Shard":
        """`shard`, dealing video frames as the tables of its split already in the output folder were written
        (`table.split_in`, asking `own`, this shard's table, first): a job that an earlier decaenv started is
        finished the way it started."""
        from decaenv.runtime.shard import LEGACY_SPLIT
        from decaenv.runtime.table import split_in

        if split_in(self.out_dir, shard.count, first=own) != LEGACY_SPLIT:
            return shard
        log.warning(
            "the tables of this %d-way split in %s were started by an earlier decaenv, which gave video frames to "
            "shards one by one: this shard goes on that way (a new output folder gets whole pieces of each video)",
            shard.count,
            self.out_dir,
        )
        return dataclasses.replace(shard, split=LEGACY_SPLIT)

    # -- model (built on demand) -----------------------------------------------------------------------
    def load(self, start_inputs: bool = False) -> None:
        """Build DECA (and its fast graphs) and the face detector, unless already done (thread-safe: the input
        pool's threads may ask at once). `start_inputs` (a run about to begin): when the run's items are prepared
        in worker processes, start those first, so that they start while the networks load."""
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load(start_inputs)

    def _load(self, start_inputs: bool = False) -> None:
        from decaenv.runtime.deca import check_data_dir, resolve_device
        from decaenv.runtime.timing import StageTimer

        if self._deca is None and self.options.data_dir is not None:
            check_data_dir(self.options.data_dir.path)  # (a data dir without DECA's files fails before workers start)
        self._device_name = str(self._deca.device if self._deca is not None else resolve_device(self.options.device))
        self._choose_detector(self._device_name)
        if start_inputs:
            self._start_processes()
        try:
            if self._deca is None:
                self._deca = build_deca(self.options)
        except BaseException:
            self.close()  # the workers started for this run
            raise
        self.timer = self._timer or StageTimer(str(self._deca.device))
        self._deca.timer = self.timer
        self._loaded = True

    def _choose_detector(self, device: str) -> None:
        """The face detector for `--iscrop` runs (on `device`; it needs no network of DECA's)."""
        self.detector = None
        if self.options.iscrop:
            from decaenv.runtime.detectors import create_detector

            data_dir = self.options.data_dir.path if self.options.data_dir is not None else None
            choice = self._detector_choice or create_detector(self.options.detector, device, data_dir=data_dir)
            self.detector = choice
            log.info("face detector: %s (%s)", choice.name, choice.reason)
            if not choice.detector.thread_safe:
                self._detect_guard = threading.Lock()

    @property
    def deca(self):
        self.load()
        return self._deca

    def work_left(self) -> bool:
        """Whether any item of this run/shard still needs the model (decided without loading any network)."""
        names = NameRegistry(quiet=True)
        for name, item in self._my_items(names, base=True):
            if not self.options.skip_existing:
                return True
            if not self._already_done(name, item):
                return True
        return False

    # -- one run ---------------------------------------------------------------------------------------
    def run(self, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> RunSummary:
        """Process every input of this run/shard; `on_item` is called after each item."""
        from decaenv.runtime.inputs import batched
        from decaenv.runtime.overlap import run_overlapped

        start = time.perf_counter()
        keep_all = self.table is None  # with a table, the table is the per-item record: the summary keeps failures
        summary = RunSummary(out_dir=str(self.out_dir))
        self._failure_rows = {}

        def report(outcome: ItemOutcome) -> None:
            row = self._failure_rows.pop(outcome.name, None)
            if row is not None and self.table is not None:
                self.table.add([row])
            summary.counts[outcome.status] = summary.counts.get(outcome.status, 0) + 1
            if keep_all or (outcome.status == "failed" and len(summary.items) < MAX_KEPT_FAILURES):
                summary.items.append(outcome)
            if on_item is not None:
                on_item(outcome)

        left = self.work_left()
        if left:  # a subclass's items() may need the detector; a finished resume loads nothing (nor torch)
            self.load(start_inputs=True)
        batches = batched(self._my_items(self._names), self.options.batch_size)
        scope = self.options.shard.suffix if self.options.shard is not None else ""
        input_in_thread = self._input_in_thread()
        self._input_pool = self._make_input_pool(input_in_thread)
        writers = self._write_workers() if self._loaded else 1
        self._item_writers = ThreadPoolExecutor(writers, "decaenv-write-item") if writers > 1 else None
        try:
            threads = self._torch_threads() if left else contextlib.nullcontext()
            with OutputLock(self.out_dir, scope=scope), threads:  # one lock per shard
                run_overlapped(
                    batches,
                    self._prepare_batch,
                    self._model_batch,
                    self._save_batch,
                    report,
                    overlap=left and self.options.overlap is not False,
                    input_in_thread=input_in_thread,
                    save_in_thread=not self.renders_when_saving,
                )
        finally:
            if self._input_pool is not None and self._input_pool is not self._processes:
                self._input_pool.close()
            self._input_pool = None
            if self._item_writers is not None:
                self._item_writers.shutdown(wait=True)
                self._item_writers = None
            self._listed = self._early_spec = None
            if self.table is not None:
                self.table.close()
        summary.seconds = time.perf_counter() - start
        if self._loaded:
            summary.stages = self.timer.as_dict()
            summary.device, summary.rasterizer = str(self._deca.device), self._deca.rasterizer.name
            summary.detector = self.detector.name if self.detector else "none (--iscrop false)"
            summary.precision = self._deca.precision
            summary.precision_check = self.precision_check or {}
            if self.table is not None:
                summary.table = str(self.table.path)
        return summary

    def _torch_threads(self) -> ContextManager:
        """The main process's torch threads for the run (`overlap.main_torch_threads`), given back after."""
        from decaenv.runtime.overlap import main_torch_threads, torch_threads

        return torch_threads(main_torch_threads(self._device_name) if self._device_name is not None else None)

    def _my_items(self, names: "NameRegistry", base: bool = False):
        """(unique name, item) for the items of this shard (`shard.Ownership`); names are assigned over all items,
        so a name does not depend on the sharding. `base`: the plain input items (no subclass splitting)."""
        from decaenv.runtime.shard import Ownership

        owner = Ownership(self.options.shard, self.options.sample_step)
        needed = self._frame_filter(names, owner)
        on_video = owner.start_video if needed is not None else None
        items = Reconstructor.items(self, needed, on_video) if base else self.items(needed, on_video)
        for item in items:
            name = names.unique(item)
            if owner.takes(item):
                yield name, item

    def items(self, needed=None, on_video=None):
        """The work items of the run, in order (a subclass may split or extend them); `needed`, `on_video`: see
        `_frame_filter`."""
        from decaenv.runtime.inputs import expand_inputs

        return expand_inputs(self.options.inputs, self.options.sample_step, needed=needed, on_video=on_video)

    def _frame_filter(self, names: "NameRegistry", owner: "Ownership"):
        """Which video frames the run needs — this shard's pieces (`owner`), and with --skip-existing those whose
        outputs are missing (unless `needs_done_frames`) — so that only those are decoded (`inputs.FrameFilter`;
        `owner.start_video` is told each video's length first). None when every frame is needed."""
        skip = self.options.skip_existing and not self.needs_done_frames
        if self.options.shard is None and not skip:
            return None

        def needed(item, k: int) -> bool:
            if not owner.owns_frame(k):
                return False
            return not skip or not self._already_done(names.unique(item), item)

        return needed

    @property
    def needs_done_frames(self) -> bool:
        """Whether the run decodes the frames it has done too (a subclass's filter over frames)."""
        return False

    def face_box(self, image, item):
        """Where to crop one item: (box or None, box kind, origin) — `datasets.find_face`. Raises InputError."""
        from decaenv.runtime.datasets import find_item_face

        detector = self.detector.detector if self.detector else None
        return find_item_face(image, item, iscrop=self.options.iscrop, detector=detector)

    def expected_items(self) -> Optional[int]:
        """How many items this run (or shard) will have, from the input listing and video headers; None when
        unknown (a video that declares no length)."""
        total = self._count_items()
        self._listed = (total,)
        return total

    def _listed_items(self) -> Optional[int]:
        """`expected_items`, without listing the inputs (and opening the videos) again when the caller just asked
        for it (the command line's progress bar, right before the run); each answer is used once."""
        listed, self._listed = self._listed, None
        return listed[0] if listed is not None else self._count_items()

    def _count_items(self) -> Optional[int]:
        from decaenv.runtime.inputs import estimate_parts
        from decaenv.runtime.shard import Ownership

        parts = estimate_parts(self.options.inputs, self.options.sample_step)
        return None if parts is None else Ownership(self.options.shard).share(parts)

    def filter_codes(self, codedict, prepared):
        """The batch's codes before decoding (identity here; `--smooth` filters them over video frames)."""
        return codedict

    def _unique_name(self, name: str) -> str:
        return self._names.unique_name(name)

    def _already_done(self, name: str, item) -> bool:
        if not self.options.skip_existing or item.error is not None:
            return False
        if self.table is not None and name not in self._done:
            return False
        from decaenv.runtime.save_kinds import expected_files
        from decaenv.runtime.writers import existing_outputs

        expected = expected_files(self.kinds, name, self.options.render_orig, self.options.use_tex)
        return bool(expected or self.table is not None) and existing_outputs(self.out_dir, name, expected)

    def prepare(self, item, report):
        """Load and crop one item; returns (name, item, crop, image) or None after reporting a failure/skip."""
        return self._prepare_named(self._unique_name(item.name), item, report)

    def _prepare_named(self, name, item, report):
        from decaenv.runtime.crop import make_crop

        if self._skipped(name, item, report):
            return None
        self.load()
        try:
            with self.timer.stage("read"):
                image = item.load()
            with self.timer.stage("detect"), self._detect_guard:
                box, kind, origin = self.face_box(image, item)
            with self.timer.stage("crop"):
                crop = make_crop(image, box, kind, origin)
        except InputError as exc:
            self._fail(name, item, exc.one_line(), report)
            return None
        return name, item, crop, image

    def _skipped(self, name, item, report) -> bool:
        """Whether the item's outputs exist (--skip-existing): reported as skipped."""
        if self._already_done(name, item):
            report(ItemOutcome(name, item.label, "skipped", "outputs exist (--skip-existing)"))
            return True
        return False

    def _fail(self, name, item, message: str, report) -> None:
        self._table_failure(name, item, message)
        report(ItemOutcome(name, item.label, "failed", message))

    def _table_failure(self, name: str, item, message: str, crop=None) -> None:
        """A failed item's table row, kept until its outcome is reported (`run`'s `report`, in input order): the
        input side may find the next batch's failures while the writing thread still adds this batch's rows, and
        the table's rows keep one order from run to run all the same (a batch's rows, then its failures)."""
        if self.failure_rows:
            from decaenv.runtime.table import make_row

            source = crop.source if crop is not None else ""
            self._failure_rows[name] = make_row(
                name, str(item.source), item.frame, "failed", message, crop_source=source
            )

    def _model_batch(self, prepared):
        """The networks on one prepared batch: (result, None) or (None, [failed outcomes])."""
        import torch

        try:
            result = self.run_model(prepared)
            if self.deca.precision != "fp32" and self.precision_check is None:
                from decaenv.runtime.fast import PRECISION_CHECK_ITEMS, deviation_from_fp32

                self.precision_check = deviation_from_fp32(self.deca, result["codedict"], items=PRECISION_CHECK_ITEMS)
            return result, None
        except RuntimeError as exc:  # e.g. out of memory: the batch fails, the run goes on
            text = " ".join(str(exc).split())[:300]
            hint = " — try a smaller --batch-size" if "memory" in text.lower() else ""
            failed = []
            for name, item, crop, _ in prepared:
                self._table_failure(name, item, f"reconstruction failed: {text}{hint}", crop)
                failed.append(ItemOutcome(name, item.label, "failed", f"reconstruction failed: {text}{hint}"))
            if self.deca.device.type == "cuda":
                torch.cuda.empty_cache()
            return None, failed

    def _save_batch(self, result, prepared) -> List[ItemOutcome]:
        writers = self._item_writers
        if writers is not None and len(prepared) > 1:  # items' files on several threads, outcomes in order
            outcomes = list(writers.map(lambda job: self.save(result, job[0], *job[1]), enumerate(prepared)))
        else:
            outcomes = [self.save(result, index, *p) for index, p in enumerate(prepared)]
        if self.table is not None:
            self.table.add(self._table_rows(result, prepared, outcomes))
        return outcomes

    def _table_rows(self, result, prepared, outcomes) -> List[dict]:
        """The batch's table rows (its codes, and landmarks, moved to numpy once for the whole batch)."""
        from decaenv.runtime.export import batch_codes
        from decaenv.runtime.item_meshes import _np
        from decaenv.runtime.table import make_row

        codes = batch_codes(result["codedict"])
        marks = None
        if self.options.table_landmarks:
            marks = {k: _np(result["geometry"][k]) for k in ("landmarks2d", "landmarks3d")}
        rows = []
        for index, ((name, item, crop, _), outcome) in enumerate(zip(prepared, outcomes)):
            if outcome.status != "ok":
                source, status = str(item.source), outcome.status
                rows.append(make_row(name, source, item.frame, status, outcome.message, crop_source=crop.source))
            else:
                rows.append(self._table_row(index, name, item, crop, codes, marks))
        return rows

    def _table_row(self, index, name, item, crop, codes, marks):
        from decaenv.runtime.export import codes_arrays
        from decaenv.runtime.table import make_row

        return make_row(
            name,
            str(item.source),
            item.frame,
            "ok",
            crop_source=crop.source,
            box=crop.box,
            tform=crop.tform,
            original_size=crop.original_size,
            codes=codes_arrays(codes, index, item_context(name, item, crop)),
            landmarks=None if marks is None else {k: v[index] for k, v in marks.items()},
        )

    def _write_workers(self) -> int:
        """Threads that write a batch's items at once (`overlap.write_workers`): beside an accelerator, for runs
        whose items' files are only their codes (nothing rendered or drawn while writing)."""
        from decaenv.runtime.overlap import write_workers

        codes_files = self.codes_only and "codes" in self.kinds
        return write_workers(str(self._deca.device), codes_files)

    @property
    def renders_when_saving(self) -> bool:
        """Writing an item renders with the model (--render-orig, the video kind): keep it in the model's thread."""
        return self.options.render_orig or "video" in self.kinds

    @property
    def codes_only(self) -> bool:
        """Only codes (and the table) are wanted: no detail decoding, no rendering."""
        return set(self.kinds) <= {"codes", "table"}

    def _input_batches(self, deca) -> InputBatches:
        """The reusable input batches (channels-last when the fast graphs run: their layout)."""
        from decaenv.runtime.batch_buffers import InputBatches

        channels_last = deca.fast is not None
        batches = self._batches
        if batches is None or batches.device != deca.device or batches.channels_last != channels_last:
            batches = self._batches = InputBatches(deca.device, channels_last)
        return batches

    def run_model(self, prepared):
        """Encode and decode prepared items together; returns the batch's dicts (codedict, opdict, visdict, …).
        Only what the requested outputs need is computed (`--save codes`/`table`: the encoders, plus FLAME for
        the table's landmarks)."""
        import torch

        from decaenv.runtime.timing import maybe_stage

        deca = self.deca
        with torch.no_grad():
            images = self._input_batches(deca).assemble([p[2].image for p in prepared])
            codedict = self.filter_codes(deca.encode(images), prepared)
            if self.codes_only:
                geometry = deca.geometry(codedict) if self.options.table_landmarks else None
                return {
                    "codedict": codedict,
                    "geometry": geometry,
                    "detail": None,
                    "opdict": {},
                    "visdict": None,
                    "depth": None,
                }
            geometry = deca.geometry(codedict)
            detail = deca.detail(codedict, geometry["verts"], geometry["albedo"])
            size = deca.image_size
            panels = "vis" in self.kinds or "images" in self.kinds
            texture = any(k in self.kinds for k in ("obj", "detail-obj", "mat", "detail-uv", "glb", "ply"))
            additions, visdict = deca.views(
                geometry,
                detail,
                codedict["images"],
                size,
                size,
                return_vis=panels,
                texture=texture,
                landmark_panels=False,  # drawn when the batch is saved (`_draw_landmark_panels`), in the writing thread
            )
            opdict = {k: geometry[k] for k in ("verts", "trans_verts", "landmarks2d", "landmarks3d_world")}
            opdict.update({k: detail[k] for k in ("uv_texture", "normals", "uv_detail_normals", "displacement_map")})
            opdict.update(additions)
            if deca.flametex is not None:
                opdict["albedo"] = geometry["albedo"]
            depth = None
            if "depth" in self.kinds:
                with maybe_stage(self.timer, "render"):
                    depth = deca.render.render_depth(geometry["trans_verts"])
        return {
            "codedict": codedict,
            "geometry": geometry,
            "detail": detail,
            "opdict": opdict,
            "visdict": visdict,
            "panel_landmarks": (geometry["landmarks2d"], additions["landmarks3d"]),
            "depth": depth,
        }

    def _original_visdict(self, result, index: int, crop, image: np.ndarray):
        """The visdict rendered at the original image size for one item (DECA's render_orig decode)."""
        import torch

        from decaenv.runtime.camera import crop_to_original_tform
        from decaenv.runtime.datasets import original_image_float

        deca = self.deca
        check_render_orig_memory(
            image.shape[0],
            image.shape[1],
            deca.device.type if deca.device.type != "cuda" else str(deca.device),
            name="--render-orig",
        )

        def one(d: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            return {k: v[index : index + 1] for k, v in d.items()}

        original = torch.from_numpy(original_image_float(image))[None].to(deca.device)
        tform = crop_to_original_tform(torch.tensor(crop.tform, dtype=torch.float32)[None]).to(deca.device)
        h, w = image.shape[:2]
        with torch.no_grad():
            geometry = deca.to_original(one(result["geometry"]), tform, h, w)
            _, visdict = deca.views(geometry, one(result["detail"]), original, h, w, background=original, texture=False)
        visdict["inputs"] = original
        return visdict

    def save(self, result, index: int, name: str, item, crop, image) -> ItemOutcome:
        """Write one item's files (atomically, all or nothing) and say how it went."""
        from decaenv.runtime.export import item_files
        from decaenv.runtime.writers import OutputSet, write_item

        if set(self.kinds) <= {"table"}:  # no file per item: its table row is all (`_table_rows`)
            return ItemOutcome(name, item.label, "ok", "", [], crop=crop.source)
        ctx = item_context(name, item, crop)
        self._draw_landmark_panels(result)
        try:
            orig = None
            if self.options.render_orig and ("vis" in self.kinds or "images" in self.kinds):
                with self.timer.stage("render"):
                    orig = self._original_visdict(result, index, crop, image)
            with self.timer.stage("save"):
                files = item_files(
                    self.deca,
                    self.kinds,
                    result["codedict"],
                    result["opdict"],
                    result["visdict"],
                    orig,
                    result["depth"],
                    index,
                    ctx,
                )
                written = write_item(OutputSet(self.out_dir, name), files)
        except DecaenvError as exc:
            return ItemOutcome(name, item.label, "failed", exc.one_line(), crop=crop.source)
        except RuntimeError as exc:
            return ItemOutcome(
                name, item.label, "failed", f"rendering failed: {' '.join(str(exc).split())[:300]}", crop=crop.source
            )
        return ItemOutcome(
            name, item.label, "ok", "", [str(p.relative_to(self.out_dir)) for p in written], crop=crop.source
        )

    def _draw_landmark_panels(self, result) -> None:
        """Draw the batch's landmark panels into its visdict, once (`run_model` leaves them to the first item
        saved: serial Python drawing, which in the writing thread overlaps the next batch's networks)."""
        landmarks = result.pop("panel_landmarks", None)
        if landmarks is not None and result["visdict"] is not None:
            from decaenv.runtime.vis import with_landmark_panels

            with self.timer.stage("save"):
                result["visdict"] = with_landmark_panels(result["visdict"], *landmarks)


def reconstruct(options: ReconstructOptions, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> RunSummary:
    """Run `decaenv reconstruct` (see `Reconstructor`)."""
    return Reconstructor(options).run(on_item)

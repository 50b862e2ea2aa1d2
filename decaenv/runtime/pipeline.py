"""`decaenv reconstruct` as a library call: inputs → crops → batched DECA → DECA's output files.

Per-item problems (unreadable file, no face, broken video, a file that cannot be written, a `--render-orig`
that would not fit in memory) are recorded and the item skipped; the run goes on. One run at a time writes
into an output folder (`decaenv.runtime.guards.OutputLock`). Crops of several images are encoded and decoded
together (`batch_size`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Callable,
    ContextManager,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

from decaenv.errors import DecaenvError, InputError, UsageError
from decaenv.paths import DataDir
from decaenv.runtime.config import GRAPHS, PRECISIONS
from decaenv.runtime.guards import OutputLock, check_render_orig_memory
from decaenv.runtime.shard import Shard

if TYPE_CHECKING:
    from decaenv.runtime.batch_buffers import InputBatches
    from decaenv.runtime.detectors import DetectorChoice
    from decaenv.runtime.input_pool import InputPool
    from decaenv.runtime.input_procs import ProcessInputPool
    from decaenv.runtime.inputs import Item

log = logging.getLogger("decaenv")


@dataclass
class ReconstructOptions:
    """Everything `decaenv reconstruct` takes (see docs/commands/reconstruct.md)."""

    inputs: Sequence[Path]
    out_dir: Path
    data_dir: Optional[DataDir] = None
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
    precision: str = "fp32"
    graph: str = "auto"
    shard: Optional[Shard] = None
    table_landmarks: bool = False
    overlap: Optional[bool] = None  # False: one stage after the other; None: input side where it pays
    input_workers: str = "auto"  # auto, threads, processes, threads:N, processes:N (`overlap.parse_input_workers`)


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
    precision: str = "fp32"
    table: str = ""
    counts: Dict[str, int] = field(default_factory=dict)
    engine: Dict[str, object] = field(default_factory=dict)
    precision_check: Dict[str, object] = field(default_factory=dict)

    def count(self, status: str) -> int:
        if self.counts:
            return self.counts.get(status, 0)
        return sum(1 for i in self.items if i.status == status)

    @property
    def failed(self) -> bool:
        return self.count("failed") > 0

    def fallbacks(self) -> List[str]:
        """Names of the items cropped by `auto`'s fallback detector (FAN found no face, MTCNN did)."""
        from decaenv.runtime.detectors import FALLBACK_NOTE

        return [i.name for i in self.items if FALLBACK_NOTE in i.crop]

    def fallback_line(self) -> str:
        """ "FAN found no face in 2 image(s) (a, b): cropped with MTCNN instead", or "" when none."""
        names = self.fallbacks()
        if not names:
            return ""
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        return (
            f"FAN found no face in {len(names)} image(s) ({shown}): cropped with MTCNN instead, so those "
            "crops differ from DECA's"
        )

    def to_json(self) -> dict:
        return {
            "schema": 1,
            "ok": self.count("ok"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "seconds": round(self.seconds, 3),
            "stages": self.stages,
            "device": self.device,
            "detector": self.detector,
            "detector_fallbacks": self.fallbacks(),
            "rasterizer": self.rasterizer,
            "out_dir": self.out_dir,
            "precision": self.precision,
            **({"table": self.table} if self.table else {}),
            **({"engine": self.engine} if self.engine else {}),
            **({"precision_check": self.precision_check} if self.precision_check else {}),
            "items": [asdict(i) for i in self.items],
        }


#: With --save table the summary keeps only failures, at most this many (the table holds every item).
MAX_KEPT_FAILURES = 1000


class NameRegistry:
    """Unique output names: a second input with the same name gets `_2`, … (a video's frames are unique
    within it, so only the video's own name is registered: memory does not grow per frame)."""

    def __init__(self, quiet: bool = False):
        self._seen: Dict[str, int] = {}
        self._videos: Dict[str, str] = {}
        self.quiet = quiet

    def unique_name(self, name: str) -> str:
        count = self._seen.get(name, 0)
        self._seen[name] = count + 1
        if count == 0:
            return name
        unique = f"{name}_{count + 1}"
        if not self.quiet:
            log.warning("output name %s is used by an earlier input: writing this one as %s", name, unique)
        return unique

    def unique(self, item) -> str:
        if item.frame is None:
            return self.unique_name(item.name)
        key = str(item.source)
        if key not in self._videos:
            self._videos[key] = self.unique_name(item.name.rsplit("_frame", 1)[0])
        return f"{self._videos[key]}_frame{item.frame:04d}"


def item_context(name: str, item, crop):
    """The exporter's `ItemContext` of one prepared item."""
    from decaenv.runtime.export import ItemContext

    return ItemContext(
        name=name,
        source=str(item.source),
        frame=item.frame,
        tform=crop.tform,
        original_size=crop.original_size,
        crop_source=crop.source,
        box=crop.box,
    )


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
        raise UsageError(
            f"output folder {out_dir} is not writable: {exc.strerror or exc}",
            hint="choose another folder with -o, or fix its permissions",
        ) from exc
    return out_dir.resolve()


class Reconstructor:
    """Runs the pipeline for one set of options (a built DECA can be reused across runs).

    Args:
        options: the run. deca: an already built model (else built from the options). timer: stage timer.
        lazy: build nothing yet (`work_left` can then decide, before any network loads, that a resumed run
            is finished); `load` or the first batch builds the model and the detector.
    """

    def __init__(self, options: ReconstructOptions, deca=None, timer=None, detector_choice=None, lazy: bool = False):
        from decaenv.runtime.export import parse_save
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

            suffix = options.shard.suffix if options.shard is not None else ""
            self.table = TableWriter(table_path(self.out_dir, suffix), landmarks=options.table_landmarks)
            if options.skip_existing:
                self._done = frozenset(self.table.done_names())
        self._deca, self._timer, self._detector_choice = deca, timer, detector_choice
        self._loaded = False
        self.timer = timer or StageTimer(None)  # the device's timer once loaded
        self.detector: Optional[DetectorChoice] = None
        self._names = NameRegistry()
        self.precision_check: Optional[dict] = None  # bf16 vs eager fp32 on the first batch
        self._batches: Optional[InputBatches] = None  # made by the first batch
        self._load_lock = threading.Lock()
        self._detect_guard: ContextManager = contextlib.nullcontext()  # a lock for detectors not thread-safe
        self._input_pool: Union[InputPool, ProcessInputPool, None] = None  # set for the duration of `run`
        self._processes: Optional[ProcessInputPool] = None  # the input worker processes, kept between runs
        self._item_writers: Optional[ThreadPoolExecutor] = None  # set for the duration of `run` (`_write_workers`)
        self._listed: Optional[Tuple[Optional[int]]] = None  # `expected_items`' last answer, for the run after it
        if not lazy:
            self.load()

    # -- model (built on demand) -----------------------------------------------------------------------
    def load(self) -> None:
        """Build DECA (and its fast graphs) and the face detector, unless already done (thread-safe: the input
        pool's threads may ask at once)."""
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()

    def _load(self) -> None:
        from decaenv.runtime.timing import StageTimer

        if self._deca is None:
            self._deca = build_deca(self.options)
        self.timer = self._timer or StageTimer(str(self._deca.device))
        self._deca.timer = self.timer
        self.detector = None
        if self.options.iscrop:
            from decaenv.runtime.detectors import create_detector

            data_dir = self.options.data_dir.path if self.options.data_dir is not None else None
            choice = self._detector_choice or create_detector(
                self.options.detector, str(self._deca.device), data_dir=data_dir
            )
            self.detector = choice
            log.info("face detector: %s (%s)", choice.name, choice.reason)
            if not choice.detector.thread_safe:
                self._detect_guard = threading.Lock()
        self._loaded = True

    @property
    def deca(self):
        self.load()
        return self._deca

    def work_left(self) -> bool:
        """Whether any item of this run/shard still needs the model (decided without loading any network)."""
        names = NameRegistry(quiet=True)
        for _, name, item in self._my_items(names, base=True):
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

        def report(outcome: ItemOutcome) -> None:
            summary.counts[outcome.status] = summary.counts.get(outcome.status, 0) + 1
            if keep_all or (outcome.status == "failed" and len(summary.items) < MAX_KEPT_FAILURES):
                summary.items.append(outcome)
            if on_item is not None:
                on_item(outcome)

        if self.work_left():  # a subclass's items() may need the detector; a finished resume loads nothing
            self.load()
        batches = batched(((name, item) for _, name, item in self._my_items(self._names)), self.options.batch_size)
        scope = self.options.shard.suffix if self.options.shard is not None else ""
        input_in_thread = self._input_in_thread()
        self._input_pool = self._make_input_pool(input_in_thread)
        writers = self._write_workers() if self._loaded else 1
        self._item_writers = ThreadPoolExecutor(writers, "decaenv-write-item") if writers > 1 else None
        try:
            with OutputLock(self.out_dir, scope=scope):  # shards write disjoint files: one lock per shard
                run_overlapped(
                    batches,
                    self._prepare_batch,
                    self._model_batch,
                    self._save_batch,
                    report,
                    overlap=self.options.overlap is not False,
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
            self._listed = None
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

    def _my_items(self, names: "NameRegistry", base: bool = False):
        """(position, unique name, item) for the items of this shard; names are assigned over all items, so a
        name does not depend on the sharding. `base`: the plain input items (no subclass splitting)."""
        shard = self.options.shard
        items = Reconstructor.items(self) if base else self.items()
        for position, item in enumerate(items):
            name = names.unique(item)
            if shard is None or shard.owns(position):
                yield position, name, item

    def items(self):
        """The work items of the run, in order (a subclass may split or extend them)."""
        from decaenv.runtime.inputs import expand_inputs

        return expand_inputs(self.options.inputs, self.options.sample_step)

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
        from decaenv.runtime.inputs import estimate_total

        total = estimate_total(self.options.inputs, self.options.sample_step)
        if total is not None and self.options.shard is not None:
            total = self.options.shard.share(total)
        return total

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
        from decaenv.runtime.export import expected_files
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
        if self.table is not None:
            from decaenv.runtime.table import make_row

            self.table.add(
                [
                    make_row(
                        name,
                        str(item.source),
                        item.frame,
                        "failed",
                        message,
                        crop_source=crop.source if crop is not None else "",
                    )
                ]
            )

    def _prepare_batch(self, batch: Sequence[Tuple[str, Item]]) -> Tuple[list, List[ItemOutcome]]:
        """Input side of one batch (in the input thread, or inline): ([prepared], [outcomes to report], in
        input order). Items are prepared on the input pool's threads or processes when there is one."""
        from decaenv.runtime.input_procs import ProcessInputPool

        pool = self._input_pool
        if isinstance(pool, ProcessInputPool):
            results = self._prepare_in_processes(pool, batch)
        elif pool is not None and len(batch) > 1:
            results = pool.map(self._prepare_one, batch)
        else:
            results = [self._prepare_one(entry) for entry in batch]
        prepared = [p for p, _ in results if p is not None]
        return prepared, [outcome for _, outcomes in results for outcome in outcomes]

    def _prepare_in_processes(self, pool, batch: Sequence[Tuple[str, Item]]) -> List[Tuple[Optional[tuple], list]]:
        """`_prepare_one` for every entry, the reading, detection and cropping done in the worker processes."""
        results: List[Tuple[Optional[tuple], list]] = []
        todo = []  # (position in results, name, item)
        for name, item in batch:
            outcomes: List[ItemOutcome] = []
            results.append((None, outcomes))
            if self._skipped(name, item, outcomes.append):
                continue
            if item.error is not None:
                self._fail(name, item, item.error.one_line(), outcomes.append)
                continue
            todo.append((len(results) - 1, name, item))
        for (position, name, item), done in zip(todo, pool.map([item for _, _, item in todo])):
            self.prepared_elsewhere(item, done.seconds)
            if done.error:
                self._fail(name, item, done.error, results[position][1].append)
            else:
                results[position] = ((name, item, done.crop, done.image), [])
        return results

    def _prepare_one(self, entry: Tuple[str, Item]) -> Tuple[Optional[tuple], List[ItemOutcome]]:
        outcomes: List[ItemOutcome] = []
        return self._prepare_named(entry[0], entry[1], outcomes.append), outcomes

    @property
    def prepares_in_parallel(self) -> bool:
        """Whether a batch's items may be prepared on several threads at once (a subclass whose `face_box`
        depends on the order of items, like the video smoother, says no)."""
        return True

    def _model_batch(self, prepared):
        """The networks on one prepared batch: (result, None) or (None, [failed outcomes])."""
        import torch

        try:
            result = self.run_model(prepared)
            if self.deca.precision != "fp32" and self.precision_check is None:
                from decaenv.runtime.fast import deviation_from_fp32

                self.precision_check = deviation_from_fp32(self.deca, result["codedict"])
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
            rows = []
            for index, ((name, item, crop, _), outcome) in enumerate(zip(prepared, outcomes)):
                rows.append(self._table_row(result, index, name, item, crop, outcome))
            self.table.add(rows)
        return outcomes

    def _table_row(self, result, index, name, item, crop, outcome):
        from decaenv.runtime.export import codes_arrays
        from decaenv.runtime.table import make_row

        if outcome.status != "ok":
            return make_row(
                name, str(item.source), item.frame, outcome.status, outcome.message, crop_source=crop.source
            )
        arrays = codes_arrays(result["codedict"], index, item_context(name, item, crop))
        landmarks = None
        if self.options.table_landmarks:
            geometry = result["geometry"]
            landmarks = {k: geometry[k][index].detach().float().cpu().numpy() for k in ("landmarks2d", "landmarks3d")}
        return make_row(
            name,
            str(item.source),
            item.frame,
            "ok",
            crop_source=crop.source,
            box=crop.box,
            tform=crop.tform,
            original_size=crop.original_size,
            codes=arrays,
            landmarks=landmarks,
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

    def _input_in_thread(self) -> bool:
        """Whether the next batch is prepared beside the networks: `overlap` when given; else where `overlap_pays`
        (an accelerator, or more than two CPUs). On two CPUs or fewer the networks' threads keep every core busy
        and the batch is prepared just before them, its items on every core at once (`input_workers`)."""
        if self.options.overlap is not None:
            return self.options.overlap
        from decaenv.runtime.overlap import overlap_pays

        return not self._loaded or overlap_pays(str(self._deca.device))

    def _make_input_pool(self, input_in_thread: bool):
        """The threads or processes that prepare a batch's items side by side (`input_workers`), or None for
        this thread alone."""
        if not self._loaded:
            return None
        from decaenv.runtime.input_pool import InputPool
        from decaenv.runtime.overlap import input_workers

        spec = self._chosen_process_spec()
        if spec is None and (not self.prepares_in_parallel or self.options.batch_size < 2):
            return None
        processes = spec is not None
        count = self._input_count or input_workers(str(self._deca.device), input_in_thread, processes=processes)
        workers = min(self.options.batch_size, count)
        if spec is not None:
            return self._process_pool(workers, spec)
        return InputPool(workers) if workers > 1 else None

    def _process_pool(self, workers: int, spec):
        """The input worker processes: started by the first run that uses them (~2 s), kept for the next runs
        of this reconstructor (`close` stops them; so does the interpreter's exit)."""
        from decaenv.runtime.input_procs import ProcessInputPool

        pool = self._processes
        # crop slots for the items alive at once: a batch prepared, one in the networks, one written, and spares
        slots = 4 * self.options.batch_size + workers
        if pool is None or pool.workers != workers or pool.spec != spec or pool.slot_count < slots:
            self.close()
            log.info("input side: %d worker processes", workers)
            pool = self._processes = ProcessInputPool(workers, spec, slots=slots)
        return pool

    def close(self) -> None:
        """Stop the input worker processes, if any were started."""
        if self._processes is not None:
            self._processes.close()
            self._processes = None

    def _uses_processes(self) -> bool:
        """Whether worker processes prepare the items (`_chosen_process_spec`)."""
        return self._chosen_process_spec() is not None

    def _chosen_process_spec(self):
        """What the worker processes need, when they prepare the items: `--input-workers processes`, or `auto`
        where `input_procs.auto_uses_processes` says so — when they can (`_process_spec`); else None."""
        from decaenv.runtime.input_procs import auto_uses_processes

        kind = self._input_kind
        if kind == "threads":
            return None
        spec, why_not = self._process_spec()
        if spec is None:
            if kind == "processes":
                log.warning("--input-workers processes: using threads, because %s", why_not)
            return None
        if kind == "processes" or auto_uses_processes(self._deca.device.type, self._listed_items):
            return spec
        return None

    def _process_spec(self):
        """(what the input processes need to prepare items the way this run does, "") or (None, why they cannot)."""
        from decaenv.runtime.input_procs import process_spec

        if not self.prepares_in_processes:
            return None, "this run prepares its items in order or from faces already found"
        return process_spec(self.detector, self.keeps_images)

    @property
    def prepares_in_processes(self) -> bool:
        """Whether worker processes may prepare this run's items (read, `datasets.find_face`, crop: what
        `_prepare_named` does); a subclass that prepares them otherwise says no."""
        return self.prepares_in_parallel

    @property
    def keeps_images(self) -> bool:
        """Whether writing an item needs its decoded image (rendering at the original size)."""
        return self.options.render_orig

    def prepared_elsewhere(self, item, seconds: Dict[str, float]) -> None:
        """An item was prepared in a worker process, in `seconds` per stage."""
        for stage, spent in seconds.items():
            self.timer.add(stage, spent)

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


class ModelOptions(Protocol):
    """The options that say which model to build (`ReconstructOptions`, `TransferOptions`, `AnimateOptions`)."""

    @property
    def data_dir(self) -> Optional[DataDir]: ...
    @property
    def device(self) -> str: ...
    @property
    def rasterizer(self) -> str: ...
    @property
    def use_tex(self) -> bool: ...
    @property
    def extract_tex(self) -> bool: ...
    @property
    def tex_type(self) -> str: ...
    @property
    def trusted_sha256(self) -> Optional[str]: ...
    @property
    def precision(self) -> str: ...
    @property
    def graph(self) -> str: ...


def build_deca(options: ModelOptions):
    """The DECA model for a run (config from the options)."""
    from decaenv.runtime.config import get_cfg_defaults
    from decaenv.runtime.deca import DECA, check_data_dir

    cfg = get_cfg_defaults()
    if options.data_dir is not None:
        check_data_dir(options.data_dir.path)
        cfg.data_dir = options.data_dir
    cfg.model.use_tex = options.use_tex
    cfg.model.extract_tex = options.extract_tex
    cfg.model.tex_type = options.tex_type
    deca = DECA(config=cfg, device=options.device, rasterizer=options.rasterizer, trusted_sha256=options.trusted_sha256)
    if options.graph != "off":
        deca.accelerate(options.precision, options.graph)
    return deca


#: --graph values ("off" = DECA's eager modules as loaded).
GRAPH_CHOICES = GRAPHS + ("off",)


def check_speed_options(options: ModelOptions) -> None:
    """Raise UsageError for an unknown --precision/--graph, or bf16 without fast graphs."""
    if options.precision not in PRECISIONS:
        raise UsageError(f"unknown --precision {options.precision!r}", hint="use fp32 (default, exact) or bf16")
    if options.graph not in GRAPH_CHOICES:
        raise UsageError(f"unknown --graph {options.graph!r}", hint=f"use one of {', '.join(GRAPH_CHOICES)}")
    if options.graph == "off" and options.precision != "fp32":
        raise UsageError("--precision bf16 needs the fast graphs", hint="drop --graph off")


def reconstruct(options: ReconstructOptions, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> RunSummary:
    """Run `decaenv reconstruct` (see `Reconstructor`)."""
    return Reconstructor(options).run(on_item)

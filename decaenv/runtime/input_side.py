"""The input side of `Reconstructor`: each batch's items read, detected and cropped — inline, on a pool of
threads, or in worker processes (`input_procs`) — and the choice between them (`--input-workers`, `--overlap`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple, Union

from decaenv.runtime.run_types import ItemOutcome, ReconstructOptions

if TYPE_CHECKING:
    from decaenv.runtime.detectors import DetectorChoice
    from decaenv.runtime.input_pool import InputPool
    from decaenv.runtime.input_procs import ProcessInputPool
    from decaenv.runtime.inputs import Item
    from decaenv.runtime.timing import StageTimer

log = logging.getLogger("decaenv")


class InputSide:
    """Mixed into `Reconstructor`: the attributes and item methods below are the reconstructor's."""

    options: ReconstructOptions
    detector: Optional[DetectorChoice]
    timer: StageTimer
    _device_name: Optional[str]
    _early_spec: Optional[tuple]
    _input_kind: str
    _input_count: Optional[int]
    _input_pool: Union[InputPool, ProcessInputPool, None]
    _processes: Optional[ProcessInputPool]
    _listed_items: Callable[[], Optional[int]]
    _skipped: Callable[[str, Item, Callable[[ItemOutcome], None]], bool]
    _fail: Callable[[str, Item, str, Callable[[ItemOutcome], None]], None]
    _prepare_named: Callable[[str, Item, Callable[[ItemOutcome], None]], Optional[tuple]]

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

    def _input_in_thread(self) -> bool:
        """Whether the next batch is prepared beside the networks: `overlap` when given; else where `overlap_pays`
        (an accelerator, or more than two CPUs). On two CPUs or fewer the networks' threads keep every core busy
        and the batch is prepared just before them, its items on every core at once (`input_workers`)."""
        if self.options.overlap is not None:
            return self.options.overlap
        from decaenv.runtime.overlap import overlap_pays

        return self._device_name is None or overlap_pays(self._device_name)

    def _make_input_pool(self, input_in_thread: bool):
        """The threads or processes that prepare a batch's items side by side (`input_workers`), or None for
        this thread alone."""
        if self._device_name is None:  # nothing loaded: a finished resume
            return None
        from decaenv.runtime.input_pool import InputPool

        spec = self._run_spec()
        if spec is None and (not self.prepares_in_parallel or self.options.batch_size < 2):
            return None
        workers = self._pool_workers(input_in_thread, processes=spec is not None)
        if spec is not None:
            return self._process_pool(workers, spec)
        return InputPool(workers) if workers > 1 else None

    def _pool_workers(self, input_in_thread: bool, processes: bool) -> int:
        """How many threads or processes prepare a batch's items (`--input-workers N`, else `input_workers`)."""
        from decaenv.runtime.overlap import input_workers

        assert self._device_name is not None, "load first"
        count = self._input_count or input_workers(self._device_name, input_in_thread, processes=processes)
        return min(self.options.batch_size, count)

    def _start_processes(self) -> None:
        """Start the input worker processes now, when this run uses them (`_chosen_process_spec`): called before
        DECA's networks load, so that the workers' start (a new interpreter, torch, the detector: 1–2 s) runs
        beside the loading instead of before the first batch. The choice is kept for the run (`_run_spec`)."""
        spec = self._chosen_process_spec()
        self._early_spec = (spec,)
        if spec is not None:
            self._process_pool(self._pool_workers(self._input_in_thread(), processes=True), spec).warm()

    def _run_spec(self):
        """The run's `_chosen_process_spec`: the one its early-started workers were made for, else decided now."""
        if self._early_spec is not None:
            spec, self._early_spec = self._early_spec[0], None
            return spec
        return self._chosen_process_spec()

    def _process_pool(self, workers: int, spec):
        """The input worker processes: started by the first run that uses them (`_start_processes`), kept for the
        next runs of this reconstructor (`close` stops them; so does the interpreter's exit)."""
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
        device_type = (self._device_name or "cpu").split(":")[0]
        if kind == "processes" or auto_uses_processes(device_type, self._listed_items):
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

"""The run loop with the input side and the writing overlapped with the networks (one thread each).

While the networks run on batch n, a thread reads, decodes, detects and crops batch n+1 and another writes
batch n-1's files; at most one batch waits on each side, so memory does not grow with the run. Outcomes are
reported in input order, from the calling thread. Where the input thread does not pay (`overlap_pays`: two
CPUs or fewer, no accelerator) each batch is prepared inline, its items on every core (`input_workers`).
"""

from __future__ import annotations

import contextlib
import functools
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, List, Optional, Tuple


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def overlap_pays(device: str, cpus: Optional[int] = None) -> bool:
    """Whether preparing the next batch (read, decode, detect, crop) beside the networks makes a run faster: on
    an accelerator (the CPU is otherwise idle while it computes), or with more than two CPUs. With two or fewer,
    the networks' threads already use every core and the input thread only preempts them: a whole `--save codes`
    run took 0.82-0.87x of the networks' eager floor with the input side inline against 0.89-0.94x overlapped,
    and with the inline side on two threads a `--save vis` run 1.08x against 1.19x (docs/BENCHMARKS.md).
    Writing stays in its own thread either way."""
    if not device.startswith("cpu"):
        return True
    return (cpus if cpus is not None else usable_cpus()) > 2


#: Threads that write a batch's per-item code files at once beside an accelerator (`write_workers`): two wrote
#: 1.41-1.71x one thread's items/s, four 1.22-1.45x (they then contend for the interpreter lock; docs/BENCHMARKS.md).
WRITE_WORKERS = 2


def write_workers(device: str, codes_files: bool, cpus: Optional[int] = None) -> int:
    """How many threads write a batch's items' files (1: the writing thread alone).

    Beside an accelerator a `--save codes` run writes two small files per item, ~1.2 ms of its writing thread
    each, most of it in file-system calls that release the interpreter lock: one thread alone writes ~570 items/s,
    below the accelerator's rate, so `WRITE_WORKERS` share them (at most the CPUs but one). On a CPU the
    networks' threads use the cores, and other outputs render or encode images in the writing thread."""
    if device.startswith("cpu") or not codes_files:
        return 1
    return max(1, min(WRITE_WORKERS, (cpus if cpus is not None else usable_cpus()) - 1))


#: Torch's intra-op threads in the main process during a run beside an accelerator (`main_torch_threads`).
MAIN_THREADS_BESIDE_ACCELERATOR = 1


def main_torch_threads(device: str) -> Optional[int]:
    """Torch threads for the main process during a run: on a CPU None (as they are: the networks use them all);
    beside an accelerator `MAIN_THREADS_BESIDE_ACCELERATOR`. There its torch work is small (a batch copied into
    pinned memory, codes moved to numpy), and every multi-threaded op leaves idle OpenMP threads spinning on the
    cores the input workers need: with instant networks the main process spent 0.63-0.74 ms of CPU per image
    with two torch threads and 0.51 ms with one (bench/host_side.py), with as many threads as a GPU box has
    cores the spinning only grows."""
    return None if device.startswith("cpu") else MAIN_THREADS_BESIDE_ACCELERATOR


@functools.lru_cache(maxsize=1)
def openmp_threads() -> bool:
    """Whether torch's intra-op parallelism is OpenMP, where each OS thread has a thread count of its own. With
    torch's native pool (some macOS and ARM builds) the count is one for the whole process and may not change once
    parallel work has started: there threads are left as they are."""
    import torch

    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def one_torch_thread() -> None:
    """Make the calling thread run torch on one intra-op thread (where counts are per thread: `openmp_threads`).
    (Torch sets a thread's count from the process-wide one on its first use there: that happens now, not later
    over this.)"""
    import torch

    if not openmp_threads():
        return
    torch.get_num_threads()
    torch.set_num_threads(1)


def one_torch_thread_executor(name: str) -> ThreadPoolExecutor:
    """A one-thread executor whose thread runs torch on one intra-op thread, started now.

    The input and writing threads work beside the networks' threads: with torch's default their torch calls
    (MTCNN, the visualisation grid) would each start an OpenMP team as large as the networks' on the same cores,
    and every region of the networks would wait at its barrier for a preempted thread. A `--save vis` run on 2
    CPUs: detail 14-15 ms and render 6 ms per image with the writing thread on one torch thread against 15-21 and
    6-9 with the default, the whole run 0.92-0.99x of the floor against 0.94-1.10x (docs/BENCHMARKS.md)."""
    pool = ThreadPoolExecutor(1, thread_name_prefix=name)
    with default_threads_kept():
        try:
            pool.submit(one_torch_thread).result()
        except BaseException:
            pool.shutdown(wait=False)
            raise
    return pool


@contextlib.contextmanager
def default_threads_kept() -> Iterator[None]:
    """The caller's torch thread count put back after the block. A thread that sets its own count also sets
    torch's process-wide default, which threads started later take: this restores it (and the caller's own)."""
    import torch

    own = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(own)


@contextlib.contextmanager
def torch_threads(count: Optional[int]) -> Iterator[None]:
    """Torch's intra-op threads set to `count` for the block (None: left as they are), given back after."""
    if count is None:
        yield
        return
    import torch

    with default_threads_kept():
        torch.set_num_threads(count)
        yield


#: The most threads that prepare items beside an accelerator: they share one interpreter lock, which preparing an
#: item holds for 15-20 % of its time (worker processes have no such limit; `input_procs`).
MAX_INPUT_WORKERS = 8
#: `--input-workers` kinds.
INPUT_KINDS = ("auto", "threads", "processes")


def parse_input_workers(text: str) -> Tuple[str, Optional[int]]:
    """`--input-workers` → (kind, count or None for the automatic count): auto, threads, processes, threads:N,
    processes:N.

    Raises:
        UsageError: anything else.
    """
    from decaenv.errors import UsageError

    kind, colon, count = (text or "auto").strip().lower().partition(":")
    if kind not in INPUT_KINDS or (colon and (kind == "auto" or not count.isdigit() or int(count) < 1)):
        raise UsageError(
            f"--input-workers {text!r} is not valid",
            hint="use auto, threads, processes, threads:N or processes:N (N >= 1)",
        )
    return kind, int(count) if count else None


def input_workers(device: str, input_in_thread: bool, cpus: Optional[int] = None, processes: bool = False) -> int:
    """How many threads (or `processes`) prepare a batch's items (each with one torch thread; 1 thread = the
    input side's own thread).

    Inline on a CPU (the networks wait meanwhile): every CPU — on two CPUs, read + detect + crop of two items at
    once instead of one. Beside an accelerator: every CPU but the one that feeds it, up to `MAX_INPUT_WORKERS`
    threads (processes: no cap). Beside CPU networks: one (the networks' threads already use the cores)."""
    cpus = cpus if cpus is not None else usable_cpus()
    if not device.startswith("cpu"):
        return max(1, cpus - 1 if processes else min(MAX_INPUT_WORKERS, cpus - 1))
    return cpus if not input_in_thread else 1


def _next_prepared(batches: Iterator, prepare: Callable) -> Optional[Tuple]:
    """(prepared, outcomes) of the next batch, or None at the end (in the input thread, or inline)."""
    batch = next(batches, None)
    return None if batch is None else prepare(batch)


def run_overlapped(
    batches: Iterable,
    prepare: Callable,
    model: Callable,
    save: Callable,
    report: Callable,
    overlap: bool = True,
    save_in_thread: bool = True,
    input_in_thread: bool = True,
) -> None:
    """prepare(batch) → (prepared, outcomes); model(prepared) → (result, failed outcomes or None);
    save(result, prepared) → outcomes. `report(outcome)` is called for every item, in order.

    Args:
        overlap: False runs everything in this thread, one stage after the other.
        save_in_thread: False keeps writing in this thread (when writing renders with the model).
        input_in_thread: False prepares each batch in this thread after the previous batch's networks, while the
            writing thread writes that batch: the writing then shares the cores with the input workers, which
            take items from one queue and so even its load out, not with the two encoders of the next batch,
            whose fixed split it would unbalance (the last of them finishing later by the writing's time).
    """
    batches = iter(batches)
    if not overlap:
        while True:
            got = _next_prepared(batches, prepare)
            if got is None:
                return
            _finish(got, model, save, report)
    with contextlib.ExitStack() as threads:
        inputs = threads.enter_context(one_torch_thread_executor("decaenv-input")) if input_in_thread else None
        writer = threads.enter_context(one_torch_thread_executor("decaenv-write"))
        upcoming: Optional[Future] = inputs.submit(_next_prepared, batches, prepare) if inputs is not None else None
        writing: Optional[Tuple[Future, List]] = None
        try:
            while True:
                got = upcoming.result() if upcoming is not None else _next_prepared(batches, prepare)
                if got is None:
                    break
                if inputs is not None:  # the next batch is prepared while the networks run on this one
                    upcoming = inputs.submit(_next_prepared, batches, prepare)
                prepared, outcomes = got
                result, failed = model(prepared) if prepared else (None, None)
                if writing is not None:  # the previous batch's files, in order
                    _report_all(writing[1] + writing[0].result(), report)
                    writing = None
                if result is None:
                    _report_all(outcomes + (failed or []), report)
                elif save_in_thread:
                    writing = (writer.submit(save, result, prepared), outcomes)
                else:
                    _report_all(outcomes + save(result, prepared), report)
            if writing is not None:
                _report_all(writing[1] + writing[0].result(), report)
        except BaseException:
            if upcoming is not None:
                upcoming.cancel()
            raise


def _finish(got: Tuple, model: Callable, save: Callable, report: Callable) -> None:
    prepared, outcomes = got
    result, failed = model(prepared) if prepared else (None, None)
    if result is None:
        _report_all(outcomes + (failed or []), report)
    else:
        _report_all(outcomes + save(result, prepared), report)


def _report_all(outcomes: List, report: Callable) -> None:
    for outcome in outcomes:
        report(outcome)

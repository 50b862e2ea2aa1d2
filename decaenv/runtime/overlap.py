"""The run loop with the input side and the writing overlapped with the networks (one thread each).

While the networks run on batch n, a thread reads, decodes, detects and crops batch n+1 and another writes
batch n-1's files; at most one batch waits on each side, so memory does not grow with the run. Outcomes are
reported in input order, from the calling thread.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, List, Optional, Tuple


def _next_prepared(batches: Iterator, prepare: Callable) -> Optional[Tuple]:
    """(prepared, outcomes) of the next batch, or None at the end (runs in the input thread)."""
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
) -> None:
    """prepare(batch) → (prepared, outcomes); model(prepared) → (result, failed outcomes or None);
    save(result, prepared) → outcomes. `report(outcome)` is called for every item, in order.

    Args:
        overlap: False runs everything in this thread, one stage after the other.
        save_in_thread: False keeps writing in this thread (when writing renders with the model).
    """
    batches = iter(batches)
    if not overlap:
        while True:
            got = _next_prepared(batches, prepare)
            if got is None:
                return
            _finish(got, model, save, report)
    with (
        ThreadPoolExecutor(1, thread_name_prefix="decaenv-input") as inputs,
        ThreadPoolExecutor(1, thread_name_prefix="decaenv-write") as writer,
    ):
        upcoming: Future = inputs.submit(_next_prepared, batches, prepare)
        writing: Optional[Tuple[Future, List]] = None
        try:
            while True:
                got = upcoming.result()
                if got is None:
                    break
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

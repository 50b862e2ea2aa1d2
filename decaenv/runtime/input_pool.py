"""A batch's items prepared (read, decode, detect, crop) on several threads at once, torch single-threaded in each.

Between two batches of network work on a small CPU, one image at a time leaves cores idle: decoding and
cropping run on one core, and the detector's small convolutions do not keep two busy. Two items on two
threads of one torch thread each keep both cores busy (docs/BENCHMARKS.md, issue 16). torch's thread count
is per calling thread (OpenMP's), so the workers' single thread does not change the networks' count in the
thread that runs them.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Sequence, TypeVar

from decaenv.runtime.overlap import default_threads_kept, one_torch_thread

#: Seconds the workers and the caller wait for each other at start-up (a thread that cannot start must not
#: leave the others waiting for ever).
_START_TIMEOUT = 60.0

_T = TypeVar("_T")
_R = TypeVar("_R")


def _one_torch_thread(barrier: threading.Barrier) -> None:
    one_torch_thread()
    barrier.wait(timeout=_START_TIMEOUT)  # every worker starts now, none later with another thread count


class InputPool:
    """`workers` threads that each run torch on one thread.

    Args:
        workers: at least 2 (one worker is the caller's own thread: use no pool).
    """

    def __init__(self, workers: int):
        if workers < 2:
            raise ValueError("an input pool needs at least two workers")
        self.workers = workers
        barrier = threading.Barrier(workers + 1)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="decaenv-prepare")
        with default_threads_kept():  # (the workers' counts of one set the default threads created later take)
            try:
                for _ in range(workers):
                    self._pool.submit(_one_torch_thread, barrier)
                barrier.wait(timeout=_START_TIMEOUT)
            except BaseException:  # e.g. "can't start new thread": release the started ones, then raise
                barrier.abort()
                self._pool.shutdown(wait=True, cancel_futures=True)
                raise

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> List[_R]:
        """[fn(item) for item in items], computed on the workers, in order; the first exception is raised."""
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        """Wait for the items in progress; items not started (an interrupted run) are dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)

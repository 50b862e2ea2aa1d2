"""E_flame and E_detail side by side on a CPU: each ResNet-50 on a thread of its own with half of torch's
intra-op threads, instead of one after the other on all of them.

Why: the two encoders are independent and equally costly. Run one after the other, each convolution is one
OpenMP region over every thread, ending in a barrier; when anything else takes a core for a moment (an input
worker process, the writing thread), the other threads wait at that barrier. Run side by side, a preempted
thread delays only its own network. Measured on 2 CPUs beside a busy single-threaded MTCNN process
(bench/encoder_pair.py, docs/BENCHMARKS.md): both bf16 encoders 107.1 ms per image one after the other against
68.1 side by side (0.64x; fp32 0.66x), the detector's rate unchanged (32 / 33 detections/s); alone 1.00x.

Each network still runs whole batches with the same packed oneDNN kernels, which split a convolution's batch,
rows and output channels among threads but not its sums: the codes are bit for bit those of the sequential call
(tests/runtime/test_encoder_pair.py, fp32 and bf16).

Torch's thread count is per OS thread for OpenMP (`torch.set_num_threads` sets the calling thread's team
size), but it also records a process-wide default that threads started later take: the pair's threads set
their own, and the calling thread then puts that default back (`overlap.default_threads_kept`).
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Optional, Tuple

import torch
from torch import nn

from decaenv.runtime.overlap import default_threads_kept, openmp_threads

#: Graphs whose encoders run side by side: the packed graph (oneDNN convolutions, whose results do not depend
#: on the thread count). The fused and frozen graphs' convolutions change in the last bits (6e-7 relative) with
#: it, and a `torch.compile`d module compiles and guards on its first calls: they stay one after the other.
PAIR_GRAPHS = ("packed",)


def pair_threads(total: int) -> Optional[Tuple[int, int]]:
    """Torch threads for (E_flame, E_detail) out of `total`, or None where the two run one after the other:
    fewer than two threads, or a torch whose intra-op threads are not OpenMP's (see `openmp_threads`)."""
    if total < 2 or not openmp_threads():
        return None
    return total // 2, total - total // 2


class EncoderPair:
    """Runs two encoders on the same images side by side (two threads, started on first use)."""

    def __init__(self) -> None:
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        _LIVE.add(self)

    def __call__(self, first: nn.Module, second: nn.Module, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(first(images), second(images)), computed side by side with the caller's torch threads split between
        them; runs them one after the other where that cannot help (see `pair_threads`)."""
        total = torch.get_num_threads()
        split = pair_threads(total)
        if split is None:
            return first(images), second(images)
        pool = self._threads()
        modes = (torch.is_inference_mode_enabled(), torch.is_grad_enabled())  # thread-local: passed on
        with default_threads_kept():  # (the pair's threads set the process-wide default with their own counts)
            jobs = [pool.submit(_run, net, images, count, modes) for net, count in zip((first, second), split)]
            wait(jobs)  # both, even when one fails: neither may set its count after the default is put back
        return jobs[0].result(), jobs[1].result()

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="decaenv-encoder")
            return self._pool

    def __getstate__(self) -> dict:  # a copied or pickled model starts threads of its own
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()  # type: ignore[misc]

    def close(self) -> None:
        """Stop the two threads (a later call starts them again)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _run(net: nn.Module, images: torch.Tensor, threads: int, modes: Tuple[bool, bool]) -> torch.Tensor:
    """One network on a pair thread, with the caller's inference / grad mode."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    inference, grad = modes
    with torch.inference_mode(inference), torch.set_grad_enabled(grad):
        return net(images)


#: Every pair, so that a forked child drops its parent's threads (they do not exist there) and starts its own.
_LIVE: "weakref.WeakSet[EncoderPair]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pair in list(_LIVE):
        pair._pool, pair._lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

"""Running a computation on several torch thread counts (kernels whose result must not depend on them)."""

from __future__ import annotations

from typing import Callable, Iterable


def equal_on_thread_counts(compute: Callable, expected, counts: Iterable[int] = (1, 2, 3)) -> bool:
    """Whether `compute()` equals `expected` bit for bit (`torch.equal`) with each torch thread count; the
    caller's count is restored."""
    import torch

    threads = torch.get_num_threads()
    try:
        for count in counts:
            torch.set_num_threads(count)
            if not torch.equal(compute(), expected):
                return False
        return True
    finally:
        torch.set_num_threads(threads)

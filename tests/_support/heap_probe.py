"""Page faults of a process that allocates and frees the same blocks again and again: the check that
`decaenv.runtime.heap.keep_freed_blocks` keeps freed blocks in the heap (tests/runtime/test_heap.py, also inside
an input worker process, which imports this module by name)."""

from __future__ import annotations

import resource

import numpy as np


def reuse_faults(megabytes: tuple = (6, 6, 3), rounds: int = 10) -> int:
    """Minor page faults of this process while it allocates, fills and frees blocks of these sizes `rounds` times,
    after two rounds that set the heap up: ~0 once `keep_freed_blocks` ran, thousands with glibc's dynamic
    thresholds."""

    def one_round() -> None:
        blocks = [np.ones(size * 2**20 // 8) for size in megabytes]
        del blocks

    one_round()
    one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        one_round()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

"""glibc's allocator in the input worker processes: freed blocks stay in the heap for the next item.

glibc serves a large `malloc` with a fresh `mmap` until a freed block of that size has raised its dynamic
threshold, and gives the top of the heap back to the system when more than twice that is free. A worker's
detector allocates and frees the same few megabytes of activations per photo (MTCNN's first layers on dozens of
patches), so it kept mapping, faulting in and zeroing them: ~130 minor page faults and ~0.9 ms of ~21 CPU-ms per
512×512 photo (docs/BENCHMARKS.md). With fixed thresholds those blocks are reused instead; the cost is at most
`TRIM_BYTES` of freed memory a worker keeps. `never_map` goes further, for measurements (bench/reconstruct.py's
eager floor).
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Dict

#: Blocks up to this size come from the heap (glibc's largest dynamic threshold: 32 MiB on 64-bit systems).
MMAP_THRESHOLD_BYTES = 32 * 2**20
#: Free memory at the top of the heap beyond this is given back to the system.
TRIM_BYTES = 128 * 2**20
#: mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
log = logging.getLogger("decaenv")


def set_options(options: Dict[int, int]) -> bool:
    """Apply glibc `mallopt` parameters ({M_*: value}) in this process, in order: True when all were taken, False
    where the allocator is not glibc's (musl, macOS) or it refused one."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on (no `find_library` subprocess)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = all(mallopt(param, value) == 1 for param, value in options.items())
    if not done:
        log.debug("mallopt refused %s; the allocator keeps its defaults", options)
    return done


def keep_freed_blocks() -> bool:
    """Fix glibc's mmap and trim thresholds in this process (True), or leave the allocator as it is (False: not
    Linux with glibc, e.g. musl or macOS)."""
    return set_options({M_MMAP_THRESHOLD: MMAP_THRESHOLD_BYTES, M_TRIM_THRESHOLD: TRIM_BYTES})


def never_map() -> bool:
    """Serve every block from the heap and never give freed memory back (no `mmap`, no trimming): a process that
    allocates and frees the same large blocks then faults each page in once. For measurements (the benchmarks'
    eager floor, whose largest activations exceed `MMAP_THRESHOLD_BYTES`); a long run pays with fragmentation."""
    return set_options({M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1})

"""glibc's allocator in the input worker processes: freed blocks stay in the heap for the next item.

glibc serves a large `malloc` with a fresh `mmap` until a freed block of that size has raised its dynamic
threshold, and gives the top of the heap back to the system when more than twice that is free. A worker's
detector allocates and frees the same few megabytes of activations per photo (MTCNN's first layers on dozens of
patches), so it kept mapping, faulting in and zeroing them: ~130 minor page faults and ~0.9 ms of ~21 CPU-ms per
512×512 photo (docs/BENCHMARKS.md). With fixed thresholds those blocks are reused instead; the cost is at most
`TRIM_BYTES` of freed memory a worker keeps.
"""

from __future__ import annotations

import ctypes
import logging
import sys

#: Blocks up to this size come from the heap (glibc's largest dynamic threshold: 32 MiB on 64-bit systems).
MMAP_THRESHOLD_BYTES = 32 * 2**20
#: Free memory at the top of the heap beyond this is given back to the system.
TRIM_BYTES = 128 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
log = logging.getLogger("decaenv")


def keep_freed_blocks() -> bool:
    """Fix glibc's mmap and trim thresholds in this process (True), or leave the allocator as it is (False: not
    Linux with glibc, e.g. musl or macOS)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on (no `find_library` subprocess)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES) == 1
    if not done:
        log.debug("mallopt refused the heap thresholds; the allocator keeps its defaults")
    return done

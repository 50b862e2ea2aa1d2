"""The input workers keep freed blocks in the heap (`decaenv.runtime.heap`): without it glibc maps, faults in and
zeroes a worker's activations again for every photo."""

import subprocess
import sys
from pathlib import Path

import pytest
from _support.heap_probe import reuse_faults

from decaenv.runtime.input_procs import PrepareSpec, ProcessInputPool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator (Linux)")

PROBE = "from decaenv.runtime import heap; from _support.heap_probe import reuse_faults; {}; print(reuse_faults())"
TESTS = Path(__file__).resolve().parents[1]  # (where `_support` is)


def _faults(setup: str) -> int:
    command = [sys.executable, "-c", PROBE.format(setup)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=TESTS)
    return int(done.stdout.split()[-1])


def test_freed_blocks_are_reused_instead_of_mapped_again():
    assert _faults("pass") > 1000  # glibc's dynamic thresholds: the blocks are given back and faulted in again
    assert _faults("assert heap.keep_freed_blocks()") < 50


def test_never_map_also_keeps_blocks_above_the_largest_threshold():
    """The benchmarks' fault-free eager floor: DECA's detail decoder frees blocks of 33-67 MB at batch 8, above the
    32 MiB that any mmap threshold allows, so only never mapping keeps them."""
    large = "reuse_faults = (lambda f: lambda: f(megabytes=(40, 40)))(reuse_faults)"
    assert _faults(f"{large}; assert heap.keep_freed_blocks()") > 1000
    assert _faults(f"{large}; assert heap.never_map()") < 50


def test_the_input_worker_processes_keep_freed_blocks():
    pool = ProcessInputPool(1, PrepareSpec(detector="none", data_dir=None), slots=0)
    try:
        assert pool._pool.submit(reuse_faults).result(timeout=120) < 50
    finally:
        pool.close()

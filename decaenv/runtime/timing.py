"""Per-stage wall-clock timing for the pipeline and the benchmark (CUDA-synchronised when needed)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

STAGES = ("read", "detect", "crop", "encode", "flame", "detail", "render", "save")


class StageTimer:
    """Accumulates seconds per stage name.

    Args:
        device: a torch device string; on CUDA each stage synchronises before reading the clock.
    """

    def __init__(self, device: Optional[str] = None):
        self.seconds: Dict[str, float] = defaultdict(float)
        self.calls: Dict[str, int] = defaultdict(int)
        self._cuda = bool(device) and str(device).startswith("cuda")
        self._lock = threading.Lock()  # the input and writing threads time their stages at once

    def _sync(self) -> None:
        if self._cuda:
            import torch

            torch.cuda.synchronize()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        """Count `seconds` spent in stage `name` (also elsewhere: a worker process)."""
        with self._lock:
            self.seconds[name] += seconds
            self.calls[name] += 1

    def as_dict(self) -> Dict[str, float]:
        return {k: round(v, 6) for k, v in self.seconds.items()}


@contextmanager
def maybe_stage(timer: Optional[StageTimer], name: str) -> Iterator[None]:
    """`timer.stage(name)` when a timer is given, else nothing."""
    if timer is None:
        yield
    else:
        with timer.stage(name):
            yield

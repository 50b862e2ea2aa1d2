"""Reusable input batches for the networks: crops are copied into one of a few preallocated tensors instead of
`np.stack` + `torch.from_numpy` allocating a new batch every time.

With the fast graphs the batch is laid out channels-last, the layout their convolutions run in, so the two
encoders no longer convert it (a copy each); on CUDA the host batch is pinned and copied asynchronously.
A batch stays valid until `DEPTH` more batches have been assembled: the run loop keeps at most two alive
(one in the networks, the previous one being written), `decaenv.runtime.overlap`.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import torch

#: How many batches are reused in turn (two are alive at once in the overlapped run loop, plus one spare).
DEPTH = 3


class InputBatches:
    """A ring of `DEPTH` preallocated (B, 3, S, S) float32 batches, grown when a larger batch comes."""

    def __init__(self, device: torch.device, channels_last: bool = False, depth: int = DEPTH):
        self.device = torch.device(device)
        self.channels_last = channels_last
        self._ring: List[Optional[torch.Tensor]] = [None] * depth
        self._turn = 0

    def _slot(self, count: int, shape: Sequence[int]) -> torch.Tensor:
        buffer = self._ring[self._turn]
        if buffer is None or buffer.shape[0] < count or tuple(buffer.shape[1:]) != tuple(shape):
            pinned = self.device.type == "cuda"
            buffer = torch.empty((count, *shape), dtype=torch.float32, pin_memory=pinned)
            if self.channels_last:
                buffer = buffer.contiguous(memory_format=torch.channels_last)
            self._ring[self._turn] = buffer
        self._turn = (self._turn + 1) % len(self._ring)
        return buffer[:count]

    def assemble(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """(3, S, S) float32 crops → (B, 3, S, S) on the device, values equal to `np.stack(crops)`.

        The copies run in numpy, on this thread alone: a torch copy is an OpenMP region, whose other threads then
        spin for milliseconds on the cores the encoders and the input workers are about to use."""
        batch = self._slot(len(crops), crops[0].shape)
        rows = batch.numpy()  # the same memory (CPU tensors; pinned ones too)
        for row, crop in zip(rows, crops):
            np.copyto(row, crop, casting="same_kind")
        if self.device.type == "cpu":
            return batch
        return batch.to(self.device, non_blocking=True)

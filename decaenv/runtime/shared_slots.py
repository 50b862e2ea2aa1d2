"""Pixels passed between the main process and the input worker processes through shared memory (`input_procs`).

**Crops back.** Pickling a 224×224 crop back through the pool's pipe cost the main process ~1 ms of CPU per item
(reading ~600 kB in 64 kB pieces, unpickling into fresh memory), a ceiling of ~700 items/s before it did anything
else. Instead the main process allocates one ring of crop slots in shared memory when it starts the workers
(torch's shared memory: backed by a file descriptor, freed with its last user even when a process is killed,
nothing left in /dev/shm); a worker warps its item's crop straight into the slot it was given and sends back the
slot's number. The main process wraps the slot as the crop's (3, S, S) array without a copy, laid out (S, S, 3) like
every crop (`crop.warp_crop`). A slot is handed out again only once every array viewing it has been collected, so
a crop stays valid however long a caller keeps it; when every slot is in use, crops travel pickled as before.

**Video frames out.** A video's frames are decoded in the main process; pickled, a 1080p frame (6 MB) cost it
8.6 ms of CPU (`bench/input_side.py --frames`). `FrameSlots` copies each frame into a shared ring of its size
instead and sends the slot (a tensor: torch passes its file descriptor once, the worker keeps it mapped), 0.6 ms.

Every ring takes at most half of what /dev/shm has free, less the rings already made (`fitting_slots`).
"""

from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from decaenv.runtime.crop import CROP_SIZE

log = logging.getLogger("decaenv")

#: Where torch's shared memory lives on Linux, and the share of its free room the slots may take (a container's
#: is 64 MB unless `docker run --shm-size` says otherwise; a slot touched past the end would kill the process).
SHM_DIR, SHM_SHARE = "/dev/shm", 0.5
#: Fewer slots than this are not worth it: the crops then travel pickled.
MIN_SLOTS = 4
#: Bytes of the rings alive in this process, by ring (`shared_ring`).
_RESERVED: Dict[int, int] = {}


def shared_ring(shape: Tuple[int, ...], dtype):
    """A tensor of `shape` in torch shared memory, counted against the room `fitting_slots` sees while it lives."""
    import weakref

    import torch

    ring = torch.empty(shape, dtype=dtype).share_memory_()
    key = id(ring)
    _RESERVED[key] = ring.numel() * ring.element_size()
    weakref.finalize(ring, _RESERVED.pop, key, None)
    return ring


def slot_bytes(size: int = CROP_SIZE) -> int:
    """Bytes of one (size, size, 3) float32 crop slot."""
    return size * size * 3 * 4


def fitting_slots(wanted: int, room: Optional[int] = None, nbytes: int = slot_bytes(), what: str = "crop slots") -> int:
    """How many of `wanted` slots of `nbytes` fit in half the shared memory's free room (`room` bytes: measured
    when None; no /dev/shm: all of them); 0 when not all fit and fewer than `MIN_SLOTS` do."""
    if room is None:
        try:
            stats = os.statvfs(SHM_DIR)
        except OSError:  # no /dev/shm (macOS): torch's own shared memory, no small fixed size known
            return wanted
        # (rings already made count in full: their pages are only used, and seen as used, once touched)
        room = stats.f_bavail * stats.f_frsize - sum(_RESERVED.values())
    count = min(wanted, max(0, int(room * SHM_SHARE)) // nbytes)
    if count == wanted:
        return count
    count = count if count >= MIN_SLOTS else 0
    log.info(
        "shared memory (%s) has room for %d of %d %s; the others travel pickled "
        "(in a container, `docker run --shm-size=1g` gives it more)",
        SHM_DIR,
        count,
        wanted,
        what,
    )
    return count


class CropSlots:
    """`count` shared (S, S, 3) float32 crop slots, handed out warmest first (only the slots a run needs at once
    are ever touched, so only they take memory).

    Args:
        count: slots (about the items alive at once: the batches being prepared, run and written). size: S.
    """

    def __init__(self, count: int, size: int = CROP_SIZE):
        import torch

        self.shape: Tuple[int, int, int] = (size, size, 3)
        self.ring = shared_ring((count, *self.shape), torch.float32)
        self._address = self.ring.data_ptr()
        self._stride = slot_bytes(size)
        self._free: List[int] = list(range(count - 1, -1, -1))  # a stack: the slot given back last goes out first

    @property
    def free(self) -> int:
        """Slots not in use now."""
        return len(self._free)

    def take(self) -> Optional[int]:
        """A free slot's number, or None when all are in use."""
        try:
            return self._free.pop()  # (list.pop and append are atomic: any thread may give slots back)
        except IndexError:
            return None

    def give_back(self, index: int) -> None:
        """Return a slot that holds no crop anyone reads (a worker's item failed)."""
        self._free.append(index)

    def crop(self, index: int) -> np.ndarray:
        """Slot `index` as a crop: a (3, S, S) float32 view of its (S, S, 3) memory. The slot is given back when
        the last array viewing it (or a tensor made from one) is collected."""
        return np.asarray(_SlotOwner(self, index)).transpose(2, 0, 1)


class _SlotOwner:
    """The numpy base of one slot's arrays: keeps the ring mapped while they live, gives the slot back after."""

    def __init__(self, slots: CropSlots, index: int):
        self.slots, self.index = slots, index
        address = slots._address + index * slots._stride
        self.__array_interface__ = {"shape": slots.shape, "typestr": "<f4", "data": (address, False), "version": 3}

    def __del__(self) -> None:
        self.slots.give_back(self.index)


class FrameSlots:
    """Shared rings of `count` video frames each, one per frame shape (the last `MAX_SHAPES` shapes), for the
    frames of one batch on their way to the workers: taken by `put`, all given back by `release`."""

    MAX_SHAPES = 2

    def __init__(self, count: int):
        self.count = count
        self._rings: Dict[Tuple[int, ...], Tuple[object, List[int]]] = {}
        self._taken: List[Tuple[Tuple[int, ...], int]] = []
        self._no_room: set = set()  # frame shapes that did not fit (asked once, logged once)

    def _ring(self, shape: Tuple[int, ...]):
        import torch

        if shape in self._no_room:
            return None
        if shape not in self._rings:
            size = int(np.prod(shape))
            count = fitting_slots(self.count, room=None, nbytes=size, what="video frame slots")
            if count == 0:
                self._no_room.add(shape)
                return None
            if len(self._rings) >= self.MAX_SHAPES:  # (only frames of a finished batch used the oldest)
                self._rings.pop(next(iter(self._rings)))
            ring = shared_ring((count, *shape), torch.uint8)
            self._rings[shape] = (ring, list(range(count - 1, -1, -1)))
        return self._rings[shape]

    def put(self, pixels: np.ndarray):
        """A (H, W, 3) uint8 frame copied into a free slot: the slot as a tensor to send, or None (no room)."""
        held = self._ring(tuple(pixels.shape)) if pixels.dtype == np.uint8 else None
        if held is None or not held[1]:
            return None
        ring, free = held
        index = free.pop()
        slot = ring[index]
        np.copyto(slot.numpy(), pixels)
        self._taken.append((tuple(pixels.shape), index))
        return slot

    def release(self) -> None:
        """Every slot `put` since the last release is free again (the workers are done with the batch)."""
        for shape, index in self._taken:
            if shape in self._rings:
                self._rings[shape][1].append(index)
        self._taken = []

"""Crops come back from the input worker processes through shared slots (`decaenv.runtime.shared_slots`): the same
pixels as pickled crops, a slot reused only once nothing views it, crops pickled when the slots run out, a failed
item's slot given back, and nothing left in /dev/shm."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest
import torch
from _support.runs import write_mixed_folder

from decaenv.runtime.shared_slots import CropSlots


def _crop(seed: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).random((3, size, size), dtype=np.float32)


def test_a_slot_is_a_crop_until_nothing_views_it():
    slots = CropSlots(2, size=8)
    ring = slots.ring.numpy()
    first = slots.take()
    np.copyto(ring[first], _crop(0).transpose(1, 2, 0))  # what a worker's warp writes
    crop = slots.crop(first)
    assert crop.shape == (3, 8, 8) and crop.dtype == np.float32
    assert np.array_equal(crop, _crop(0))
    assert np.ascontiguousarray(crop.transpose(1, 2, 0)).tobytes() == ring[first].tobytes()  # (S, S, 3) memory
    tensor = torch.from_numpy(crop)[1:]  # a tensor of a view of the crop keeps the slot too
    second = slots.take()
    assert slots.take() is None and slots.free == 0
    del crop
    gc.collect()
    assert slots.free == 0  # the tensor still reads it
    np.copyto(ring[second], _crop(1).transpose(1, 2, 0))
    assert torch.equal(tensor, torch.from_numpy(_crop(0))[1:])
    del tensor
    assert slots.free == 1 and slots.take() == first  # back as soon as the last view went (warmest first)
    slots.give_back(second)
    slots.give_back(first)
    assert slots.free == 2


def _dev_shm() -> set:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.mark.slow  # spawns an interpreter that imports torch
def test_workers_hand_crops_back_through_the_slots(tmp_path):
    from decaenv.runtime.input_procs import Preparer, PrepareSpec, ProcessInputPool
    from decaenv.runtime.inputs import expand_inputs

    before = _dev_shm()
    items = list(expand_inputs([write_mixed_folder(tmp_path)]))  # p0, p1, p1b_broken, p2, p2b_noface, p3
    spec = PrepareSpec("", None)  # --iscrop false: every readable image is a crop
    inline = [Preparer(spec)(item) for item in items]
    pool = ProcessInputPool(1, spec, slots=3)
    try:
        done = pool.map(items)
        # 3 slots for 6 items: the last three crops travelled pickled; the broken file's slot came back
        assert [p.slot for p in done] == [0, 1, None, None, None, None]
        assert pool.slots.free == 1
        for mine, theirs in zip(done, inline):
            assert mine.error == theirs.error
            if theirs.crop is not None:
                assert np.array_equal(mine.crop.image, theirs.crop.image)
                assert np.array_equal(mine.crop.tform, theirs.crop.tform)
        del mine, theirs
        assert done[2].error == inline[2].error != "" and done[2].crop is None
        done = None
        gc.collect()
        assert pool.slots.free == 3  # every slot back once its crop was dropped
        again = pool.map(items[:2])
        assert [p.slot for p in again] == [0, 1]
    finally:
        pool.close()
    assert _dev_shm() == before  # torch's shared memory is a file descriptor, not a /dev/shm file


def test_the_slots_fit_in_half_the_free_shared_memory(caplog):
    from decaenv.runtime.shared_slots import MIN_SLOTS, fitting_slots, slot_bytes

    one = slot_bytes()  # 224 x 224 x 3 float32
    assert one == 602112
    assert fitting_slots(100, room=1 << 40) == 100
    with caplog.at_level("INFO", logger="decaenv"):
        assert fitting_slots(271, room=64 << 20) == 55  # docker's default /dev/shm: 32 MB of slots
    assert "room for 55 of 271 crop slots" in caplog.text and "--shm-size" in caplog.text
    assert fitting_slots(271, room=2 * MIN_SLOTS * one - 1) == 0  # too few to be worth it: pickled
    assert fitting_slots(3, room=1 << 40) == 3  # (a small pool asked for few)


def test_frame_slots_hold_a_batch_of_frames_per_shape(monkeypatch):
    from decaenv.runtime.shared_slots import FrameSlots

    monkeypatch.setattr("decaenv.runtime.shared_slots.MIN_SLOTS", 1)
    frames = FrameSlots(2)
    a, b, c = (np.full((4, 6, 3), k, np.uint8) for k in (1, 2, 3))
    sent = [frames.put(a), frames.put(b)]
    assert all(isinstance(s, torch.Tensor) and s.is_shared() for s in sent)
    assert np.array_equal(sent[0].numpy(), a) and np.array_equal(sent[1].numpy(), b)
    assert frames.put(c) is None  # both slots out: this frame goes pickled
    assert frames.put(a.astype(np.float32)) is None  # not a uint8 frame
    frames.release()
    again = frames.put(c)
    assert again is not None and np.array_equal(again.numpy(), c)
    other = frames.put(np.zeros((8, 8, 3), np.uint8))  # another video's size: a ring of its own
    assert other is not None and other.shape == (8, 8, 3)
    frames.release()
    frames.put(np.zeros((2, 2, 3), np.uint8))  # a third size: the oldest ring goes
    assert len(frames._rings) == FrameSlots.MAX_SHAPES and (4, 6, 3) not in frames._rings
    asked = []
    monkeypatch.setattr("decaenv.runtime.shared_slots.fitting_slots", lambda *a, **k: asked.append(1) or 0)
    huge = np.zeros((64, 64, 3), np.uint8)  # no room for frames this size: pickled, and asked only once
    assert frames.put(huge) is None and frames.put(huge) is None and len(asked) == 1


@pytest.mark.slow  # spawns an interpreter that imports torch
def test_video_frames_go_to_the_workers_through_slots(tmp_path, monkeypatch):
    from _support.media import make_video

    from decaenv.runtime.input_procs import Preparer, PrepareSpec, ProcessInputPool
    from decaenv.runtime.inputs import expand_inputs
    from decaenv.runtime.shared_slots import FrameSlots

    items = list(expand_inputs([make_video(tmp_path / "clip.mp4", 5, size=(96, 64))]))
    assert len(items) == 5 and all(item.pixels is not None for item in items)
    put = []
    real_put = FrameSlots.put
    monkeypatch.setattr(FrameSlots, "put", lambda self, pixels: put.append(1) or real_put(self, pixels))
    spec = PrepareSpec("", None)
    inline = [Preparer(spec)(item) for item in items]
    pool = ProcessInputPool(2, spec, slots=16)  # 4 frame slots: the 5th frame travels pickled
    try:
        done = pool.map(items)
        assert len(put) == 5 and all(len(free) == 4 for _, free in pool.frames._rings.values())  # all back
        for mine, theirs in zip(done, inline):
            assert mine.error == theirs.error == ""
            assert np.array_equal(mine.crop.image, theirs.crop.image)
        assert all(item.pixels is not None for item in items)  # the caller's items keep their pixels
    finally:
        pool.close()


def test_rings_already_made_count_against_the_room(monkeypatch):
    import decaenv.runtime.shared_slots as shared

    class Stats:  # a 64 MB /dev/shm, all of it free (a new ring's pages are not touched yet)
        f_bavail, f_frsize = 64 << 20, 1

    monkeypatch.setattr(shared.os, "statvfs", lambda path: Stats)
    first = shared.CropSlots(shared.fitting_slots(1000))
    assert first.ring.shape[0] == 55  # half of 64 MB
    assert shared.fitting_slots(1000) == 28  # half of the ~32 MB the first ring left
    del first
    gc.collect()
    assert shared.fitting_slots(1000) == 55  # its memory is free again

"""Reused input batches: the same values as `np.stack`, the same codes from the networks, the buffers reused in
turn (and not while the run loop may still hold a batch)."""

import numpy as np
import torch

from decaenv.runtime.batch_buffers import DEPTH, InputBatches


def _crops(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((3, 224, 224), dtype=np.float32) for _ in range(count)]


def test_batches_equal_np_stack_in_either_layout():
    for channels_last in (False, True):
        batches = InputBatches(torch.device("cpu"), channels_last)
        crops = _crops(4)
        batch = batches.assemble(crops)
        assert batch.shape == (4, 3, 224, 224) and batch.dtype == torch.float32
        assert torch.equal(batch, torch.from_numpy(np.stack(crops)))
        assert batch.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_buffers_are_reused_in_turn_and_grow_for_larger_batches():
    batches = InputBatches(torch.device("cpu"))
    first = [batches.assemble(_crops(3, seed)) for seed in range(DEPTH)]
    storages = {b.untyped_storage().data_ptr() for b in first}
    assert len(storages) == DEPTH  # batches alive together never share memory
    again = batches.assemble(_crops(2, 9))  # a smaller last batch: the first buffer again
    assert again.untyped_storage().data_ptr() == first[0].untyped_storage().data_ptr() and again.shape[0] == 2
    assert torch.equal(first[1], torch.from_numpy(np.stack(_crops(3, 1))))  # the others untouched
    bigger = batches.assemble(_crops(5, 3))
    assert torch.equal(bigger, torch.from_numpy(np.stack(_crops(5, 3))))


def test_fast_codes_from_a_reused_batch_equal_codes_from_a_stacked_one(deca, astronaut_crop):
    image = astronaut_crop[0][0]
    crops = [image.numpy(), image.flip(2).numpy().copy()]
    try:
        deca.accelerate("fp32", "fused")
        batches = InputBatches(deca.device, channels_last=True)
        with torch.no_grad():
            reused = deca.encode(batches.assemble(crops))
            stacked = deca.encode(torch.from_numpy(np.stack(crops)))
    finally:
        deca.fast = None
    for key in ("shape", "exp", "pose", "cam", "detail"):
        assert torch.equal(reused[key], stacked[key]), key


def test_crops_in_any_layout_are_copied_without_a_torch_op():
    """A worker's crop is a (3, S, S) view of (S, S, 3) memory; a torch copy would start an OpenMP region whose
    threads then spin on the cores the encoders need (docs/BENCHMARKS.md): the copies run in numpy."""
    from torch.profiler import ProfilerActivity, profile

    rng = np.random.default_rng(4)
    hwc = [rng.random((224, 224, 3), dtype=np.float32).transpose(2, 0, 1) for _ in range(2)]
    crops = hwc + [np.ascontiguousarray(hwc[0]), hwc[1].astype(np.float64)]
    batches = InputBatches(torch.device("cpu"), channels_last=True)
    for _ in range(DEPTH):  # each buffer of the ring is allocated (torch ops) on first use
        batches.assemble(crops)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        batch = batches.assemble(crops)
    ops = {e.key for e in prof.key_averages() if e.key.startswith("aten::")}
    assert not ops & {"aten::copy_", "aten::_to_copy", "aten::clone"}, ops  # views only (slice, as_strided, to)
    assert torch.equal(batch, torch.from_numpy(np.stack(crops).astype(np.float32)))

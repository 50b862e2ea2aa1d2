"""The extension's `summed_area` kernel: MTCNN's summed-area table, the same integers as the torch code."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from decaenv.runtime.detectors import mtcnn_ops


def _torch_table(image: torch.Tensor, monkeypatch) -> torch.Tensor:
    with monkeypatch.context() as patch:
        patch.setattr(mtcnn_ops, "loaded_op", lambda name: None)
        return mtcnn_ops.SummedAreaTable().fill(image).table.clone()


def test_kernel_equals_the_torch_table(built_extension, monkeypatch):
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (1, 9), (7, 1), (5, 7), (64, 33), (512, 512)]:
        image = torch.from_numpy(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        table = mtcnn_ops.SummedAreaTable().fill(image).table
        expected = _torch_table(image, monkeypatch)
        assert table.dtype == torch.int32 and torch.equal(table, expected), (h, w)
        assert int(table[-1, -1].sum()) == int(image.sum())
    full = torch.full((300, 200, 3), 255, dtype=torch.uint8)  # the largest sums
    assert torch.equal(mtcnn_ops.SummedAreaTable().fill(full).table, _torch_table(full, monkeypatch))


def test_other_channel_counts_and_int64_tables(built_extension):
    rng = np.random.default_rng(1)
    op = torch.ops.decaenv.summed_area
    for channels, dtype in [(1, torch.int32), (2, torch.int64), (3, torch.int64), (4, torch.int32)]:
        pixels = rng.integers(0, 256, (23, 31, channels), dtype=np.uint8)
        expected = np.zeros((24, 32, channels), np.int64)
        expected[1:, 1:] = pixels.astype(np.int64).cumsum(0).cumsum(1)
        table = torch.full((24, 32, channels), -5, dtype=dtype)  # every element written, row and column 0 too
        assert op(torch.from_numpy(pixels), table) is table
        assert np.array_equal(table.numpy(), expected), (channels, dtype)


def test_mtcnn_finds_the_same_faces_with_the_kernels(built_extension, monkeypatch, mtcnn_data_dir):
    """Every MTCNN kernel (this one, `max_pool_cl`, `box_means`, `nms_keep`) against torch's code, full search and
    fast pass."""
    import skimage.data

    from decaenv.runtime.detectors import create_detector

    detector = create_detector("mtcnn", "cpu", data_dir=mtcnn_data_dir).detector
    base = skimage.data.astronaut()
    photos = [base, base[:, ::-1], np.roll(base, 61, axis=1), base[40:400, 20:500]]
    for fast in (True, False):
        for k, photo in enumerate(photos):
            photo = np.ascontiguousarray(photo)
            with_kernels = detector.detect_all(photo, fast=fast)
            with monkeypatch.context() as patch:
                patch.setattr(mtcnn_ops, "loaded_op", lambda name: None)
                without = detector.detect_all(photo, fast=fast)
            assert with_kernels, k
            assert [(d.box, d.score) for d in with_kernels] == [(d.box, d.score) for d in without], (k, fast)
            assert all(np.array_equal(a.landmarks, b.landmarks) for a, b in zip(with_kernels, without)), (k, fast)


def test_kernel_refuses_bad_arguments_with_one_line(built_extension):
    op = torch.ops.decaenv.summed_area
    image = torch.zeros(4, 5, 3, dtype=torch.uint8)
    for args, words in [
        ((image.float(), torch.zeros(5, 6, 3, dtype=torch.int32)), "image must be"),
        ((image, torch.zeros(4, 5, 3, dtype=torch.int32)), "table must be a contiguous"),
        ((image, torch.zeros(5, 6, 3)), "int32 or int64"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            op(*args)

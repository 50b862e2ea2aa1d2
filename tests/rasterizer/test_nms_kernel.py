"""The extension's `nms_keep` kernel: MTCNN's greedy non-maximum suppression, the same boxes as the torch code."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from decaenv.runtime.detectors import mtcnn_ops


def _torch_nms(monkeypatch, *args, **kwargs) -> torch.Tensor:
    with monkeypatch.context() as patch:
        patch.setattr(mtcnn_ops, "loaded_op", lambda name: None)
        return mtcnn_ops.nms(*args, **kwargs)


def _boxes(generator, count: int, integer: bool) -> torch.Tensor:
    """Crowded boxes; integer corners give overlaps exactly at the thresholds (0.5, 0.25, ...)."""
    corner = torch.randint(0, 40, (count, 2), generator=generator).double()
    size = torch.randint(-2, 25, (count, 2), generator=generator).double()  # some empty and inverted boxes
    if not integer:
        corner = corner + torch.rand(count, 2, generator=generator, dtype=torch.float64)
        size = size * torch.rand(count, 2, generator=generator, dtype=torch.float64)
    return torch.cat([corner, corner + size], 1)


@pytest.mark.parametrize("mode", ["union", "min"])
@pytest.mark.parametrize("integer", [True, False])
def test_kernel_keeps_the_torch_codes_boxes(built_extension, monkeypatch, mode, integer):
    monkeypatch.setattr(mtcnn_ops, "NMS_BLOCK", 64)  # the torch code in several blocks
    generator = torch.Generator().manual_seed(0)
    for count in (0, 1, 2, 9, 300):
        boxes = _boxes(generator, count, integer)
        scores = torch.randint(0, 12, (count,), generator=generator).double() / 12  # ties: input order decides
        groups = torch.randint(0, 4, (count,), generator=generator)
        for threshold in (0.0, 0.25, 0.5, 0.7):
            for group in (None, groups):
                got = mtcnn_ops.nms(boxes, scores, threshold, mode, groups=group)
                expected = _torch_nms(monkeypatch, boxes, scores, threshold, mode, groups=group)
                assert got.tolist() == expected.tolist(), (count, threshold, group is None)


def test_kernel_propagates_nan_and_tiny_areas_like_torch(built_extension, monkeypatch):
    nan = math.nan
    boxes = torch.tensor(
        [[0, 0, 10, 10], [nan, 0, 10, 10], [1, 1, 11, nan], [0, 0, 1e-7, 1e-7], [0, 0, 2e-7, 1e-7], [2, 2, 9, 9]],
        dtype=torch.float64,
    )
    scores = torch.tensor([0.9, 0.95, 0.8, 0.7, 0.99, 0.6], dtype=torch.float64)
    for mode in ("union", "min"):
        for threshold in (0.3, 0.5):
            got = mtcnn_ops.nms(boxes, scores, threshold, mode)
            assert got.tolist() == _torch_nms(monkeypatch, boxes, scores, threshold, mode).tolist()


def test_kernel_is_used_and_refuses_bad_arguments(built_extension, monkeypatch):
    calls = []
    real = mtcnn_ops.loaded_op
    monkeypatch.setattr(mtcnn_ops, "loaded_op", lambda name: calls.append(name) or real(name))
    boxes = _boxes(torch.Generator().manual_seed(1), 5, True)
    scores = torch.linspace(1, 0, 5, dtype=torch.float64)
    mtcnn_ops.nms(boxes, scores, 0.5)
    assert calls == ["nms_keep"]
    calls.clear()
    mtcnn_ops.nms(boxes.float(), scores, 0.5)  # float32 boxes: the torch code (the kernel computes in float64)
    assert calls == []
    op = torch.ops.decaenv.nms_keep
    none = torch.zeros(0, dtype=torch.int64)
    for args, words in [
        ((boxes.float(), 0.5, False, none), r"\(N, 4\) float64"),
        ((boxes[:, :3].contiguous(), 0.5, False, none), r"\(N, 4\) float64"),
        ((boxes.t().contiguous().t(), 0.5, False, none), r"\(N, 4\) float64"),
        ((boxes, 0.5, False, torch.zeros(4, dtype=torch.int64)), "groups must be"),
        ((boxes, 0.5, False, torch.zeros(5, dtype=torch.int32)), "groups must be"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            op(*args)

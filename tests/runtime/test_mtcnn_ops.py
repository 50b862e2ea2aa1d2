"""MTCNN's compute path against plain references: the summed-area table, area resizing, the loop-free NMS and
the pyramid canvas (P-Net once over all levels = P-Net level by level)."""

import math

import numpy as np
import pytest
import torch

from decaenv.runtime.detectors import mtcnn_ops
from decaenv.runtime.detectors.mtcnn_ops import SummedAreaTable, area_resize, nms
from decaenv.runtime.detectors.mtcnn_pyramid import PyramidPlan, level_scales


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> list:
    """The textbook loop: take the best box, drop everything overlapping it by more than the threshold."""
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        rest = []
        for j in order:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            a_i = max(boxes[i, 2] - boxes[i, 0], 0) * max(boxes[i, 3] - boxes[i, 1], 0)
            a_j = max(boxes[j, 2] - boxes[j, 0], 0) * max(boxes[j, 3] - boxes[j, 1], 0)
            denom = min(a_i, a_j) if mode == "min" else a_i + a_j - w * h
            if (w * h / denom if denom > 0 else 0.0) <= threshold:
                rest.append(j)
        order = rest
    return keep


def test_nms_union_and_min():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95], dtype=torch.float64)
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [3, 2]  # 0 and 1 contain box 3


@pytest.mark.parametrize("mode", ["union", "min"])
def test_nms_equals_the_greedy_loop_on_crowded_random_boxes(mode, monkeypatch):
    monkeypatch.setattr(mtcnn_ops, "NMS_BLOCK", 64)  # several blocks: boxes kept earlier suppress later blocks
    rng = np.random.default_rng(1)
    corners = rng.uniform(0, 100, (300, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 40, (300, 2))], 1)
    scores = rng.integers(0, 40, 300) / 40.0  # many ties: input order must break them
    for threshold in (0.3, 0.5, 0.7):
        got = nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold, mode).tolist()
        assert got == greedy_nms(boxes, scores, threshold, mode)


def test_nms_groups_suppress_only_within_their_group():
    rng = np.random.default_rng(2)
    corners = rng.uniform(0, 60, (120, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(10, 30, (120, 2))], 1)
    scores, groups = rng.uniform(0, 1, 120), rng.integers(0, 3, 120)
    got = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5, groups=torch.from_numpy(groups)).tolist()
    expected = []
    for g in range(3):
        members = np.nonzero(groups == g)[0]
        expected += [int(members[k]) for k in greedy_nms(boxes[members], scores[members], 0.5)]
    assert sorted(got) == sorted(expected)
    assert [scores[i] for i in got] == sorted((scores[i] for i in got), reverse=True)


def test_summed_area_table_is_exact_and_reuses_its_buffer():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    sat = SummedAreaTable().fill(torch.from_numpy(image))
    expected = np.zeros((38, 54, 3), np.int64)
    expected[1:, 1:] = image.astype(np.int64).cumsum(0).cumsum(1)
    assert np.array_equal(sat.table.numpy(), expected)
    first = sat.table
    sat.fill(torch.from_numpy(image[::-1].copy()))
    assert sat.table is first  # same size: same buffer
    expected[1:, 1:] = image[::-1].astype(np.int64).cumsum(0).cumsum(1)
    assert np.array_equal(sat.table.numpy(), expected)


def test_area_resize_equals_torch_area_interpolation_with_zero_padding():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    sat = SummedAreaTable().fill(torch.from_numpy(image))
    normalised = (torch.from_numpy(image).permute(2, 0, 1).double() - 127.5) / 128.0
    boxes = torch.tensor([[5, 7, 45, 47], [-10, -5, 20, 25], [70, 50, 95, 70], [3, 3, 9, 9]])
    out = area_resize(sat, boxes, 24, 24)
    for k, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        patch = torch.zeros(3, y2 - y1, x2 - x1, dtype=torch.float64)  # 0 after normalisation outside the image
        sx0, sy0, sx1, sy1 = max(x1, 0), max(y1, 0), min(x2, 80), min(y2, 60)
        patch[:, sy0 - y1 : sy1 - y1, sx0 - x1 : sx1 - x1] = normalised[:, sy0:sy1, sx0:sx1]
        expected = torch.nn.functional.interpolate(patch[None], size=(24, 24), mode="area")[0]
        assert torch.allclose(out[k].double(), expected, atol=1e-6)


@pytest.mark.parametrize("size, skip", [((512, 512), 3), ((224, 224), 0), ((300, 190), 1), ((97, 640), 0)])
def test_pnet_over_the_pyramid_canvas_equals_pnet_level_by_level(size, skip):
    from decaenv.runtime.detectors.mtcnn import PNet

    torch.manual_seed(0)
    pnet = PNet().eval()
    for module in pnet.modules():  # random weights with some spread, like trained ones
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.3)
    height, width = size
    image = np.random.default_rng(4).integers(0, 256, (height, width, 3), dtype=np.uint8)
    sat = SummedAreaTable().fill(torch.from_numpy(image))
    plan = PyramidPlan.build(height, width, skip, torch.device("cpu"))
    scales = level_scales(height, width, skip)
    assert plan.scales.tolist() == scales
    with torch.inference_mode():
        prob, reg = pnet(plan.canvas_image(sat), plan.conv1_mask)
        for k, scale in enumerate(scales):
            h, w = int(height * scale + 1), int(width * scale + 1)
            whole = torch.tensor([[0, 0, width, height]])
            own_prob, own_reg = pnet(area_resize(sat, whole, h, w))
            y, x = plan.origin[k].tolist()
            cells_h, cells_w = own_prob.shape[1:]
            assert (cells_h, cells_w) == (math.ceil((h - 2) / 2) - 4, math.ceil((w - 2) / 2) - 4)
            assert (plan.level[y : y + cells_h, x : x + cells_w] == k).all()
            assert torch.allclose(prob[0, y : y + cells_h, x : x + cells_w], own_prob[0], atol=1e-5)
            assert torch.allclose(reg[0, :, y : y + cells_h, x : x + cells_w], own_reg[0], atol=1e-5)
    assert int((plan.level >= 0).sum()) == sum(
        (math.ceil((int(height * s + 1) - 2) / 2) - 4) * (math.ceil((int(width * s + 1) - 2) / 2) - 4) for s in scales
    )


@pytest.mark.cuda
def test_mtcnn_on_cuda_finds_the_cpu_boxes(mtcnn_data_dir):
    import skimage.data

    from decaenv.runtime.detectors import create_detector

    image = skimage.data.astronaut()
    on_cpu = create_detector("mtcnn", "cpu", data_dir=mtcnn_data_dir).detector.detect_all(image)
    on_gpu = create_detector("mtcnn", "cuda", data_dir=mtcnn_data_dir).detector.detect_all(image)
    assert len(on_cpu) == len(on_gpu) >= 1
    for a, b in zip(on_cpu, on_gpu):
        assert np.abs(np.array(a.box) - np.array(b.box)).max() < 0.5


@pytest.mark.cuda
def test_input_batches_on_cuda_come_from_pinned_memory():
    from decaenv.runtime.batch_buffers import InputBatches

    crops = [np.random.default_rng(k).random((3, 224, 224), dtype=np.float32) for k in range(3)]
    batches = InputBatches(torch.device("cuda"), channels_last=True)
    batch = batches.assemble(crops)
    assert batch.is_cuda and batches._ring[0].is_pinned()
    assert torch.equal(batch.cpu(), torch.from_numpy(np.stack(crops)))

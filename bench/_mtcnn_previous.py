"""The MTCNN cascade as it was before issue 16's rewrite (main at 5801104), kept only as bench/detect.py's
baseline: numpy boxes and NMS loop, a float64 summed-area table of the normalised image, P-Net level by
level, NCHW networks. It takes the three networks from a `MtcnnDetector` (copied back to NCHW).
"""

from __future__ import annotations

import copy
from typing import List, Tuple

import numpy as np
import torch

from decaenv.runtime.detectors.base import Detection
from decaenv.runtime.detectors.mtcnn import FACTOR, MIN_FACE, THRESHOLDS, fast_skip_levels


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression. boxes: (N, 4) x1 y1 x2 y2; returns kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: List[int] = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]))
        h = np.maximum(0.0, np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]))
        inter = w * h
        denom = np.minimum(areas[i], areas[rest]) if mode == "min" else areas[i] + areas[rest] - inter
        overlap = np.where(denom > 0, inter / np.maximum(denom, 1e-12), 0.0)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, :2] + side[:, None]
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    extra = 1.0 if plus_one else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    return boxes[:, :4] + reg * np.stack([w, h, w, h], 1)


def summed_area_table(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) → (C, H+1, W+1) float64 cumulative sums with a zero first row and column."""
    sat = torch.zeros(image.shape[0], image.shape[1] + 1, image.shape[2] + 1, dtype=torch.float64, device=image.device)
    sat[:, 1:, 1:] = image.double().cumsum(1).cumsum(2)
    return sat


def _bounds(start: torch.Tensor, extent: torch.Tensor, out: int):
    """adaptive pooling's cell edges: start + floor(i·n/out) and start + ceil((i+1)·n/out). (N,) → 2× (N, out)."""
    i = torch.arange(out, device=start.device)
    lo = start[:, None] + torch.div(i[None] * extent[:, None], out, rounding_mode="floor")
    hi = start[:, None] - torch.div(-(i[None] + 1) * extent[:, None], out, rounding_mode="floor")
    return lo, hi


def area_resize(sat: torch.Tensor, boxes: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Crops of integer boxes (x1, y1, x2, y2; end exclusive; zero outside the image) resized by area
    averaging — `F.interpolate(crop, mode="area")` for every box at once, from a summed-area table.

    Args:
        sat: `summed_area_table` of a (C, H, W) image. boxes: (N, 4) int64.
    Returns:
        (N, C, out_h, out_w) float32.
    """
    height, width = sat.shape[1] - 1, sat.shape[2] - 1
    r0, r1 = _bounds(boxes[:, 1], boxes[:, 3] - boxes[:, 1], out_h)
    c0, c1 = _bounds(boxes[:, 0], boxes[:, 2] - boxes[:, 0], out_w)
    area = ((r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]).double()
    r0, r1 = r0.clamp(0, height), r1.clamp(0, height)
    c0, c1 = c0.clamp(0, width), c1.clamp(0, width)

    def at(rows, cols):
        return sat[:, rows[:, :, None], cols[:, None, :]]  # (C, N, out_h, out_w)

    sums = at(r1, c1) - at(r0, c1) - at(r1, c0) + at(r0, c0)
    return (sums / area).permute(1, 0, 2, 3).float()


def _crops(sat: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Zero-padded crops of the rounded boxes, area-resized to size×size. sat: of the normalised image."""
    ints = torch.from_numpy(np.round(boxes[:, :4]).astype(np.int64)).to(sat.device)
    ints[:, 2] = torch.maximum(ints[:, 2], ints[:, 0] + 1)
    ints[:, 3] = torch.maximum(ints[:, 3], ints[:, 1] + 1)
    return area_resize(sat, ints, size, size)


class PreviousMtcnn:
    """detect_all(image, fast) of the previous detector, on copies of `detector`'s networks."""

    def __init__(self, detector):
        self.device = detector.device
        nets = (detector.pnet, detector.rnet, detector.onet)
        self.pnet, self.rnet, self.onet = (copy.deepcopy(n).to(memory_format=torch.contiguous_format) for n in nets)

    @torch.inference_mode()
    def detect_all(self, image: np.ndarray, fast: bool = True) -> List[Detection]:
        """Every face found in an (H, W, 3) uint8 RGB image (`fast`: large faces first, the full search only
        when there are none; `fast=False` always searches down to 20-pixel faces)."""
        tensor = (
            torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).to(self.device).permute(2, 0, 1).float()
            - 127.5
        ) / 128.0
        sat = summed_area_table(tensor)
        skip = fast_skip_levels(min(image.shape[:2])) if fast else 0
        faces = self._cascade(sat, skip) if skip else []
        # a face below the fast pass's size was found at a coarser level than the full search would use: redo
        if faces and max(max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in faces) >= MIN_FACE / FACTOR**skip:
            return faces
        return self._cascade(sat, 0)

    def _cascade(self, sat: torch.Tensor, skip: int) -> List[Detection]:
        boxes = self._stage1(sat, skip)
        if len(boxes):
            boxes = self._stage2(sat, boxes)
        if not len(boxes):
            return []
        boxes, points = self._stage3(sat, boxes)
        return [
            Detection(box=tuple(float(v) for v in b[:4]), kind="bbox", landmarks=p, score=float(b[4]))
            for b, p in zip(boxes, points)
        ]

    def _stage1(self, sat: torch.Tensor, skip: int = 0) -> np.ndarray:
        """Proposals from the image pyramid, leaving out its first `skip` (largest, small-face) levels."""
        h, w = sat.shape[1] - 1, sat.shape[2] - 1
        whole = torch.tensor([[0, 0, w, h]], device=sat.device)
        scale, min_side, found = 12.0 / MIN_FACE, min(h, w) * 12.0 / MIN_FACE, []
        for _ in range(skip):
            scale *= FACTOR
            min_side *= FACTOR
        while min_side >= 12:
            resized = area_resize(sat, whole, int(h * scale + 1), int(w * scale + 1))
            prob, reg = self.pnet(resized)
            prob, reg = prob[0].cpu().numpy(), reg[0].cpu().numpy()
            ys, xs = np.nonzero(prob >= THRESHOLDS[0])
            if len(ys):
                cells = np.stack([xs, ys], 1).astype(np.float64)
                b = np.concatenate(
                    [
                        np.floor((2 * cells + 1) / scale),
                        np.floor((2 * cells + 12) / scale),
                        prob[ys, xs][:, None],
                        reg[:, ys, xs].T,
                    ],
                    1,
                )
                found.append(b[nms(b[:, :4], b[:, 4], 0.5)])
            scale *= FACTOR
            min_side *= FACTOR
        if not found:
            return np.zeros((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        regressed = _regress(boxes[:, :4], boxes[:, 5:9], plus_one=False)
        return _square(np.concatenate([regressed, boxes[:, 4:5]], 1))

    def _stage2(self, sat: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
        prob, reg = self.rnet(_crops(sat, boxes, 24))
        prob, reg = prob.cpu().numpy(), reg.cpu().numpy()
        keep = prob > THRESHOLDS[1]
        boxes, reg = np.concatenate([boxes[keep, :4], prob[keep, None]], 1), reg[keep]
        if not len(boxes):
            return boxes
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes, reg = boxes[pick], reg[pick]
        return _square(np.concatenate([_regress(boxes, reg), boxes[:, 4:5]], 1))

    def _stage3(self, sat: torch.Tensor, boxes: np.ndarray) -> Tuple[np.ndarray, List[np.ndarray]]:
        prob, reg, marks = self.onet(_crops(sat, boxes, 48))
        prob, reg, marks = prob.cpu().numpy(), reg.cpu().numpy(), marks.cpu().numpy()
        keep = prob > THRESHOLDS[2]
        boxes, reg, marks = np.concatenate([boxes[keep, :4], prob[keep, None]], 1), reg[keep], marks[keep]
        if not len(boxes):
            return boxes, []
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        points = np.stack(
            [w[:, None] * marks[:, :5] + boxes[:, 0:1] - 1, h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], 2
        )
        boxes = np.concatenate([_regress(boxes, reg), boxes[:, 4:5]], 1)
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7, mode="min")
        return boxes[pick], [points[i] for i in pick]

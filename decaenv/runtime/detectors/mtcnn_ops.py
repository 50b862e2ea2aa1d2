"""MTCNN's box arithmetic in torch: an integer summed-area table, area resizing of many boxes at once, greedy
non-maximum suppression without a Python loop over boxes, box regression and squaring.

Everything stays on the detector's device (no numpy round trips); box coordinates are float64 like the
reference cascade's numpy arrays, network inputs float32.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from decaenv.runtime.rasterizer.extension import loaded_op

#: MTCNN's input normalisation: (pixel - MEAN) / STD; pixels outside the image count as 0 after it.
MEAN, STD = 127.5, 128.0
#: Boxes resolved per block by `nms` (bounds the N×N overlap matrices on busy images).
NMS_BLOCK = 1024


class SummedAreaTable:
    """Integer summed-area table of an (H, W, 3) uint8 image, in a buffer reused while the image size stays.

    Layout (H + 1, W + 1, 3), a zero first row and column; the corner sum at (row, col) is at flat row
    `table_rows(row, col, W)` of its (·, 3) view. The sums along W run as one torch cumsum (a middle dimension,
    which torch's CPU kernel scans fast); those along H, on a CPU, as one vectorised row addition per image row
    (torch scans an outer dimension an order of magnitude slower): the fill takes ~1 ms for a 512×512 photo
    instead of ~3 — 0.26 ms with the compiled extension's `summed_area` kernel, used where it is loaded (the input
    worker processes load it). Sums are exact (int32 up to 8.4 M pixels, int64 beyond).
    """

    def __init__(self) -> None:
        self._buffers: Dict[Tuple[int, int, str], torch.Tensor] = {}
        self.table: Optional[torch.Tensor] = None
        self.height = self.width = 0

    def fill(self, image: torch.Tensor) -> "SummedAreaTable":
        """image: (H, W, 3) uint8 on the target device. Returns self."""
        h, w = int(image.shape[0]), int(image.shape[1])
        dtype = torch.int32 if h * w * 255 < 2**31 else torch.int64
        key = (h, w, str(image.device))
        table = self._buffers.get(key)
        if table is None or table.dtype != dtype:
            self._buffers.clear()  # one size at a time: a video keeps one buffer, a folder of photos no pile-up
            table = torch.zeros(h + 1, w + 1, 3, dtype=dtype, device=image.device)
            self._buffers[key] = table
        op = loaded_op("summed_area") if table.device.type == "cpu" else None
        if op is not None:  # the compiled extension's kernel (the same integers)
            op(image.contiguous(), table)
            self.table, self.height, self.width = table, h, w
            return self
        table[1:, 1:] = image
        torch.cumsum(table, 1, out=table)  # along W, in place (the zero first row and column stay zero)
        if table.device.type == "cpu":
            rows = table.numpy()  # the same memory
            for r in range(2, h + 1):  # along H: each row adds the finished one above it
                np.add(rows[r], rows[r - 1], out=rows[r])
        else:
            torch.cumsum(table, 0, out=table)
        self.table, self.height, self.width = table, h, w
        return self


class MaxPool(nn.MaxPool2d):
    """MTCNN's pooling layers (`ceil_mode=True`, no padding): torch's `max_pool2d`, or the compiled extension's
    `max_pool_cl` kernel where it is loaded and the input is a float32 channels-last CPU tensor without gradients
    (the same values; MTCNN's six pools on a 512×512 photo: 0.95 → 0.63 ms)."""

    def __init__(self, kernel: int, stride: int):
        super().__init__(kernel, stride, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        usable = x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad
        op = loaded_op("max_pool_cl") if usable and x.is_contiguous(memory_format=torch.channels_last) else None
        if op is None:
            return super().forward(x)
        return op(x, self.kernel_size, self.stride)


def table_rows(rows: torch.Tensor, cols: torch.Tensor, width: int) -> torch.Tensor:
    """Flat rows of a `SummedAreaTable`'s (·, 3) view for corner positions (row, col) of a W = `width` image."""
    return rows * (width + 1) + cols


def _bounds(start: torch.Tensor, extent: torch.Tensor, out: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Adaptive pooling's cell edges: start + floor(i·n/out) and start + ceil((i+1)·n/out). (N,) → 2× (N, out)."""
    i = torch.arange(out, device=start.device)
    lo = start[:, None] + torch.div(i[None] * extent[:, None], out, rounding_mode="floor")
    hi = start[:, None] - torch.div(-(i[None] + 1) * extent[:, None], out, rounding_mode="floor")
    return lo, hi


def area_resize(sat: SummedAreaTable, boxes: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Normalised crops of integer boxes resized by area averaging: `F.interpolate(crop, mode="area")` of
    (image - 127.5) / 128 zero-padded outside the image, for every box at once.

    Args:
        sat: a filled `SummedAreaTable`. boxes: (N, 4) int64 x1, y1, x2, y2 (end exclusive, non-empty).
    Returns:
        (N, 3, out_h, out_w) float32, channels-last.
    """
    r0, r1 = _bounds(boxes[:, 1], boxes[:, 3] - boxes[:, 1], out_h)
    c0, c1 = _bounds(boxes[:, 0], boxes[:, 2] - boxes[:, 0], out_w)
    area = (r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]
    r0, r1 = r0.clamp(0, sat.height), r1.clamp(0, sat.height)
    c0, c1 = c0.clamp(0, sat.width), c1.clamp(0, sat.width)
    inside = (r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]  # pixels of each cell that lie in the image
    table = sat.table
    assert table is not None, "fill the summed-area table first"
    # the four corners of every cell
    rows = torch.stack([r1, r0, r1, r0])[:, :, :, None]
    index = table_rows(rows, torch.stack([c1, c1, c0, c0])[:, :, None, :], sat.width)  # (4, N, out_h, out_w)
    mean = box_means(table.view(-1, 3), index.view(4, -1), inside.view(-1), area.view(-1))
    return mean.view(*index.shape[1:], 3).permute(0, 3, 1, 2)  # a view: (N, 3, h, w) in channels-last memory


def box_means(table: torch.Tensor, index: torch.Tensor, inside: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """Normalised means of P cells of a summed-area table: ((sum of the pixels) - 127.5 · inside) / (128 · area).

    The compiled extension's `box_means` kernel where it is loaded (one pass instead of a gather and five
    elementwise passes; the same numbers: the sums are exact integers, their conversion and the products exact,
    the subtraction and division rounded once each either way), else torch.

    Args:
        table: (R, 3) rows of a `SummedAreaTable`. index: (4, P) int64 rows of each cell's corners (+, -, -, +).
        inside: (P,) pixels of each cell inside the image, area: (P,) its size (int64 or float32, below 2^24).
    Returns:
        (P, 3) float32.
    """
    op = loaded_op("box_means") if table.device.type == "cpu" else None
    if op is not None:
        return op(table, index.contiguous(), inside.to(torch.float32).contiguous(), area.to(torch.float32).contiguous())
    corners = table.index_select(0, index.reshape(-1)).view(4, -1, table.shape[1])
    sums = corners[0] - corners[1] - corners[2] + corners[3]  # exact integers, < 2**24 for cells under 256²
    return (sums.to(torch.float32) - MEAN * inside.reshape(-1, 1)) / (STD * area.reshape(-1, 1))


def integer_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Float boxes (N, ≥4) → rounded int64 (N, 4) (half to even, like numpy), at least one pixel wide and high."""
    ints = torch.round(boxes[:, :4]).to(torch.int64)
    ints[:, 2] = torch.maximum(ints[:, 2], ints[:, 0] + 1)
    ints[:, 3] = torch.maximum(ints[:, 3], ints[:, 1] + 1)
    return ints


def _overlap(a: torch.Tensor, b: torch.Tensor, mode: str) -> torch.Tensor:
    """(Na, 4), (Nb, 4) → (Na, Nb) intersection over union ("union") or over the smaller area ("min")."""
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    w = (torch.minimum(a[:, None, 2], b[None, :, 2]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp_min(0)
    h = (torch.minimum(a[:, None, 3], b[None, :, 3]) - torch.maximum(a[:, None, 1], b[None, :, 1])).clamp_min(0)
    inter = w * h
    if mode == "min":
        denom = torch.minimum(area_a[:, None], area_b[None, :])
    else:
        denom = area_a[:, None] + area_b[None, :] - inter
    return torch.where(denom > 0, inter / denom.clamp_min(1e-12), torch.zeros_like(inter))


def _resolve(suppresses: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """Greedy NMS inside one block, as a fixed point: keep[i] = alive[i] and no kept j < i suppresses i.

    suppresses: (n, n) bool, [j, i] true when j (earlier) suppresses i. The iteration from "all alive" settles
    the boxes in order of their suppression-chain depth and stops at the unique fixed point (≤ n + 1 rounds).
    """
    keep = alive
    while True:
        new = alive & ~(suppresses & keep[:, None]).any(0)
        if torch.equal(new, keep):
            return keep
        keep = new


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    threshold: float,
    mode: str = "union",
    groups: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Greedy non-maximum suppression: the same boxes as the one-at-a-time loop, without it.

    Args:
        boxes: (N, 4) x1 y1 x2 y2. scores: (N,). threshold: a box overlapping a kept, better one by more than
        this is dropped. mode: "union" (IoU) or "min" (over the smaller box). groups: (N,) ints; when given,
        boxes only suppress boxes of their own group (MTCNN's per-pyramid-level NMS, all levels in one call).
    Returns:
        (K,) int64 indices of the kept boxes, best score first (ties in input order).

    The compiled extension's `nms_keep` kernel where it is loaded and the boxes are float64 on the CPU (one pass
    against the kept boxes, the same comparisons; ~0.17 → ~0.035 ms a call with its sort, at MTCNN's sizes), else torch.
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    ordered = boxes[order]
    group = None if groups is None else groups[order]
    op = loaded_op("nms_keep") if boxes.device.type == "cpu" and boxes.dtype == torch.float64 else None
    if op is not None:
        none = torch.zeros(0, dtype=torch.int64)
        return order[op(ordered.contiguous(), float(threshold), mode == "min", none if group is None else group.long())]
    keep = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    for start in range(0, len(order), NMS_BLOCK):
        stop = min(start + NMS_BLOCK, len(order))
        block = ordered[start:stop]
        alive = torch.ones(stop - start, dtype=torch.bool, device=boxes.device)
        if start:  # boxes kept in earlier blocks
            kept = keep[:start].nonzero()[:, 0]
            hit = _overlap(ordered[kept], block, mode) > threshold
            if group is not None:
                hit &= group[kept][:, None] == group[start:stop][None, :]
            alive = ~hit.any(0)
        inner = (_overlap(block, block, mode) > threshold).triu(1)
        if group is not None:
            inner &= group[start:stop][:, None] == group[start:stop][None, :]
        keep[start:stop] = _resolve(inner, alive)
    return order[keep]


def square(boxes: torch.Tensor) -> torch.Tensor:
    """(N, ≥4) boxes → the same rows with x1 y1 x2 y2 replaced by the square of side max(w, h), same centre."""
    out = boxes.clone()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, :2] + side[:, None]
    return out


def regress(boxes: torch.Tensor, offsets: torch.Tensor, plus_one: bool = True) -> torch.Tensor:
    """(N, ≥4) boxes moved by (N, 4) offsets relative to their size (+1 pixel with `plus_one`) → (N, 4)."""
    extra = 1.0 if plus_one else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    return boxes[:, :4] + offsets * torch.stack([w, h, w, h], 1)

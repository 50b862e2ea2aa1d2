"""MTCNN's image pyramid packed into one canvas, so P-Net runs once per image instead of once per level.

The levels (the image area-resized by 0.709^k) are tiled column by column at even offsets. P-Net is
fully convolutional (3×3 conv, 2×2/2 max pool in ceil mode, two 3×3 convs, 1×1 heads), so a tile's output
cells equal the level's own as long as (1) conv1 outputs whose 3×3 window leaves the tile are set to -inf
before the pool — which is exactly what ceil mode does at the level's border — and (2) only the cells whose
receptive field lies inside the tile are read. The plan (gather indices, masks, cell → level maps) depends
only on the image size and the first level, so it is built once per size and reused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import torch

from decaenv.runtime.detectors.mtcnn_ops import SummedAreaTable, _bounds, box_means, table_rows

#: P-Net looks at 12×12 windows; a face of MIN_FACE pixels is scaled to that size at the first level.
CELL, MIN_FACE, FACTOR = 12, 20, 0.709


def level_scales(height: int, width: int, skip: int = 0) -> List[float]:
    """The pyramid's scale factors (MTCNN's: 12/20 · 0.709^k while the short side stays ≥ 12 px), without
    the first `skip` levels; computed by repeated multiplication, like the reference cascade."""
    scale, min_side, scales = CELL / MIN_FACE, min(height, width) * CELL / MIN_FACE, []
    for _ in range(skip):
        scale *= FACTOR
        min_side *= FACTOR
    while min_side >= CELL:
        scales.append(scale)
        scale *= FACTOR
        min_side *= FACTOR
    return scales


def _even(n: int) -> int:
    return n + n % 2


def _layout(sizes: List[Tuple[int, int]]) -> Tuple[List[Tuple[int, int]], int, int]:
    """(y, x) offsets of the tiles (even, in columns no taller than the first tile) and the canvas (H, W)."""
    height = _even(sizes[0][0])
    offsets: List[Tuple[int, int]] = []
    x, y, column = 0, 0, 0
    for h, w in sizes:
        if column and y + h <= height and w <= column:
            offsets.append((y, x))
        else:
            x, y, column = x + column, 0, _even(w)
            offsets.append((0, x))
        y += _even(h)
    return offsets, height, x + column


@dataclass
class PyramidPlan:
    """Everything about one image size's pyramid canvas that does not depend on the pixels.

    Attributes:
        scales: (L,) per level. index: (4, Hc·Wc) int64 rows of the summed-area table for every canvas pixel's
        four cell corners. area, inside: (Hc, Wc, 1) float32 cell sizes (inside: the part in the image; 0 off
        the tiles). conv1_mask: (1, 1, Hc-2, Wc-2) 0 or -inf. level: (Ho, Wo) int64 level of each P-Net
        output cell, -1 where no level's cell is. origin: (L, 2) output-grid (y, x) of each tile's first cell.
    """

    scales: torch.Tensor
    index: torch.Tensor
    area: torch.Tensor
    inside: torch.Tensor
    conv1_mask: torch.Tensor
    level: torch.Tensor
    origin: torch.Tensor
    canvas: Tuple[int, int]

    @classmethod
    def build(cls, height: int, width: int, skip: int, device: torch.device) -> "PyramidPlan":
        scales = level_scales(height, width, skip)
        sizes = [(int(height * s + 1), int(width * s + 1)) for s in scales]
        offsets, ch, cw = _layout(sizes)
        index = torch.zeros(4, ch, cw, dtype=torch.int64)
        area = torch.ones(ch, cw)
        inside = torch.zeros(ch, cw)
        mask = torch.full((ch - 2, cw - 2), -math.inf)
        out_h, out_w = math.ceil((ch - 2) / 2) - 4, math.ceil((cw - 2) / 2) - 4
        level = torch.full((out_h, out_w), -1, dtype=torch.int64)
        whole = torch.tensor([0])
        for k, ((h, w), (y, x)) in enumerate(zip(sizes, offsets)):
            r0, r1 = (t[0] for t in _bounds(whole, torch.tensor([height]), h))
            c0, c1 = (t[0] for t in _bounds(whole, torch.tensor([width]), w))
            rows, cols = torch.stack([r1, r0, r1, r0])[:, :, None], torch.stack([c1, c1, c0, c0])[:, None, :]
            index[:, y : y + h, x : x + w] = table_rows(rows, cols, width)
            area[y : y + h, x : x + w] = ((r1 - r0)[:, None] * (c1 - c0)[None, :]).float()
            inside[y : y + h, x : x + w] = area[y : y + h, x : x + w]
            mask[y : y + h - 2, x : x + w - 2] = 0.0
            cells_h, cells_w = math.ceil((h - 2) / 2) - 4, math.ceil((w - 2) / 2) - 4
            level[y // 2 : y // 2 + cells_h, x // 2 : x // 2 + cells_w] = k
        return cls(
            scales=torch.tensor(scales, dtype=torch.float64, device=device),
            index=index.view(4, -1).to(device),
            area=area[..., None].to(device),
            inside=inside[..., None].to(device),
            conv1_mask=mask[None, None].to(device),
            level=level.to(device),
            origin=torch.tensor([(y // 2, x // 2) for y, x in offsets], dtype=torch.int64, device=device),
            canvas=(ch, cw),
        )

    def canvas_image(self, sat: SummedAreaTable) -> torch.Tensor:
        """All levels of the normalised image in one (1, 3, Hc, Wc) float32 channels-last canvas (0 between
        the tiles)."""
        assert sat.table is not None, "fill the summed-area table first"
        mean = box_means(sat.table.view(-1, 3), self.index.view(4, -1), self.inside.view(-1), self.area.view(-1))
        return mean.view(*self.canvas, 3).permute(2, 0, 1)[None]

"""Visualisation: DECA's landmark panels, image conversion and the `visualize` strip (deca-spec §8.3).

Drawn with Pillow instead of OpenCV (same geometry: white lines between consecutive points within each
facial part, a dot per point; 2D points green, 3D points green when visible and red otherwise). Unlike
DECA, the last point of each part gets its dot too.
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping

import numpy as np
import torch
import torch.nn.functional as F

#: Last index of each facial part in the 68-point layout: no line is drawn from it to the next point.
PART_ENDS = (16, 21, 26, 30, 35, 41, 47, 67)
GREEN, RED, WHITE = (0, 255, 0), (255, 0, 0), (255, 255, 255)


def _draw_landmarks(height: int, width: int, points: np.ndarray, radius: int):
    """Draw one landmark set on a transparent canvas of (height, width); returns (RGB uint8, bool mask)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    pixels = [tuple(p) for p in points[:, :2].tolist()]
    last = len(pixels) - 1
    starts = [0] + [end + 1 for end in PART_ENDS if end < last]
    for start, stop in zip(starts, starts[1:] + [last + 1]):  # a polyline per facial part
        if stop - start > 1:
            draw.line(pixels[start:stop], fill=WHITE + (255,), width=radius)
    visible = points[:, 3] > 0.5 if points.shape[1] >= 4 else np.ones(len(points), bool)
    for (x, y), seen in zip(pixels, visible.tolist()):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(GREEN if seen else RED) + (255,))
    array = np.asarray(canvas)
    return array[..., :3], array[..., 3] > 0


def tensor_vis_landmarks(images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Landmarks drawn on images. Never modifies `landmarks` (DECA converts them to pixels in place on CPU,
    corrupting its saved landmark files, deca-spec §8.4).

    Args:
        images: (B, 3, H, W) in [0, 1]. landmarks: (B, 68, 2 | 3 | 4) normalised x, y (4th column visibility).
    Returns:
        (B, 3, H, W) float32 on the images' device.
    """
    batch, _, height, width = images.shape
    points = landmarks.detach().float().cpu().numpy().copy()
    points[..., 0] = points[..., 0] * width / 2 + width / 2
    points[..., 1] = points[..., 1] * height / 2 + height / 2
    radius = max(int(min(height, width) / 200), 1)
    out = images.detach().float().clone()
    for b in range(batch):
        pixels = np.nan_to_num(points[b, :, :2], nan=-1e6, posinf=1e6, neginf=-1e6).astype(np.int64)  # DECA truncates
        margin = 2 * radius + 2  # only the region round the points is drawn (images may be large)
        x0, y0 = (int(np.clip(pixels[:, k].min() - margin, 0, (width, height)[k])) for k in (0, 1))
        x1, y1 = (int(np.clip(pixels[:, k].max() + margin + 1, 0, (width, height)[k])) for k in (0, 1))
        if x1 <= x0 or y1 <= y0:
            continue
        local = np.concatenate([pixels - np.array([x0, y0]), points[b, :, 2:]], 1)
        rgb, mask = _draw_landmarks(y1 - y0, x1 - x0, local, radius)
        # only the drawn pixels change: (3, n) colours in [0, 1], float32 like the images
        colours = torch.from_numpy(rgb[mask].T.astype(np.float32) / np.float32(255.0))
        region = out[b, :, y0:y1, x0:x1]
        region[:, torch.from_numpy(mask).to(region.device)] = colours.to(region.device)
    return out


def with_landmark_panels(
    visdict: Mapping[str, torch.Tensor], landmarks2d: torch.Tensor, landmarks3d: torch.Tensor
) -> Dict[str, torch.Tensor]:
    """`visdict` (its "inputs" first) with DECA's two landmark panels drawn on the inputs, in DECA's panel order:
    inputs, landmarks2d, landmarks3d, then the rest. landmarks: (B, 68, 2 | 3 | 4) normalised (see
    `tensor_vis_landmarks`)."""
    images = visdict["inputs"]
    panels = {"inputs": images}
    panels["landmarks2d"] = tensor_vis_landmarks(images, landmarks2d)
    panels["landmarks3d"] = tensor_vis_landmarks(images, landmarks3d)
    panels.update((k, v) for k, v in visdict.items() if k not in panels)
    return panels


def tensor2image(tensor: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] → (H, W, 3) uint8 RGB: ×255, clamp, truncating cast (DECA's `tensor2image`,
    without its BGR swap)."""
    image = tensor.detach().float().cpu().numpy() * 255.0
    image = np.clip(image, 0, 255).transpose(1, 2, 0)
    return image.astype(np.uint8).copy()


def make_grid(batch: torch.Tensor, nrow: int = 8, padding: int = 2) -> torch.Tensor:
    """torchvision's `make_grid` for (B, C, H, W): one image unpadded, several in rows of `nrow` with
    `padding` black pixels round each."""
    if batch.shape[0] == 1:
        return batch[0]
    count, channels, height, width = batch.shape
    cols = min(nrow, count)
    rows = int(math.ceil(count / cols))
    cell_h, cell_w = height + padding, width + padding
    grid = batch.new_zeros((channels, rows * cell_h + padding, cols * cell_w + padding))
    for k in range(count):
        r, c = divmod(k, cols)
        grid[
            :, r * cell_h + padding : r * cell_h + padding + height, c * cell_w + padding : c * cell_w + padding + width
        ] = batch[k]
    return grid


def visualize_grid(visdict: Mapping[str, torch.Tensor], size: int = 224, dim: int = 2) -> np.ndarray:
    """DECA's `visualize`: every panel nearest-resized to height `size` (dim 2, side by side) or width `size`
    (dim 1, stacked), gridded, concatenated; ×255, clamped, truncated to uint8. Returns (H, W, 3) uint8 RGB.

    Each panel is converted straight into its place in the (H, W, 3) result (the same operations, panel by
    panel): no float copy of the whole strip, no transposition of it."""
    if dim not in (1, 2):
        raise ValueError("dim must be 1 or 2")
    panels: List[torch.Tensor] = []
    for value in visdict.values():
        _, _, h, w = value.shape
        new_h, new_w = (size, int(w * size / h)) if dim == 2 else (int(h * size / w), size)
        value = value.detach().float()
        if (new_h, new_w) != (h, w):  # (nearest resizing to the same size is the identity: skip the copy)
            value = F.interpolate(value, [new_h, new_w])
        panels.append(make_grid(value.cpu()))
    extents = [int(p.shape[dim]) for p in panels]
    others = [int(p.shape[3 - dim]) for p in panels]
    if len(set(others)) > 1:  # (what torch.cat said here before)
        raise RuntimeError(f"panels of different {'heights' if dim == 2 else 'widths'}: {others}")
    channels = int(panels[0].shape[0])
    shape = (others[0], sum(extents), channels) if dim == 2 else (sum(extents), others[0], channels)
    strip = torch.empty(shape, dtype=torch.uint8)
    start = 0
    for panel, extent in zip(panels, extents):
        pixels = (panel * 255.0).clamp_(0, 255).to(torch.uint8)  # ×255, clamp, truncating cast
        strip.narrow(dim - 1, start, extent).copy_(pixels.permute(1, 2, 0))
        start += extent
    return strip.numpy()


def item_visdict(visdict: Dict[str, torch.Tensor], index: int) -> Dict[str, torch.Tensor]:
    """The panels of one batch element (each (1, 3, H, W))."""
    return {k: v[index : index + 1] for k, v in visdict.items()}

"""DECA's orthographic camera and the crop ↔ original-image point mapping (deca-spec §5).

Image space is DECA's normalised space: x right, y down, both in [-1, 1] over the image with −1 at the outer
edge of pixel 0 (grid_sample, align_corners=False); z: smaller is closer to the camera.
"""

from __future__ import annotations

from typing import Sequence

import torch


def batch_orth_proj(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """s · [x + tx, y + ty, z] (translation before scaling; z is scaled too).

    Args:
        points: (B, N, 3) FLAME world points. cam: (B, 3) [s, tx, ty].
    Returns:
        (B, N, 3).
    """
    cam = cam.reshape(-1, 1, 3)
    xy = points[:, :, :2] + cam[:, :, 1:]
    return cam[:, :, 0:1] * torch.cat([xy, points[:, :, 2:]], dim=2)


def project(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """DECA's projection to image space: [s(x+tx), −s(y+ty), −s·z] (y and z negated). Returns a new tensor.

    Args:
        points: (B, N, 3). cam: (B, 3).
    Returns:
        (B, N, 3) normalised image x, y and depth z.
    """
    projected = batch_orth_proj(points, cam)
    sign = torch.tensor([1.0, -1.0, -1.0], dtype=projected.dtype, device=projected.device)
    return projected * sign


def transform_points(
    points: torch.Tensor, tform: torch.Tensor, points_scale: Sequence[int], out_scale: Sequence[int]
) -> torch.Tensor:
    """Map crop-space normalised points to the original image's normalised space (render_orig).

    q = (x·0.5 + 0.5)·crop_size (both axes); [q_x, q_y, 1] · tform → original pixels (X, Y);
    X' = X / w · 2 − 1, Y' = Y / h · 2 − 1; z and any further columns unchanged.

    Args:
        points: (B, N, C ≥ 2). tform: (B, 3, 3) = (P⁻¹)ᵀ with P the crop matrix (DECA's demo passes this).
        points_scale: (crop_h, crop_w), both equal (224). out_scale: (h, w) of the original image.
    Returns:
        (B, N, C) new tensor.
    """
    if points_scale[0] != points_scale[1]:
        raise ValueError("points_scale must be square (DECA's crops are)")
    xy = (points[:, :, :2] * 0.5 + 0.5) * points_scale[0]
    ones = torch.ones_like(xy[:, :, :1])
    mapped = torch.bmm(torch.cat([xy, ones], dim=-1), tform.to(points.dtype))
    x = mapped[:, :, 0:1] / out_scale[1] * 2 - 1
    y = mapped[:, :, 1:2] / out_scale[0] * 2 - 1
    return torch.cat([x, y, points[:, :, 2:]], dim=-1)


def crop_to_original_tform(crop_matrix: torch.Tensor) -> torch.Tensor:
    """(P⁻¹)ᵀ from the crop matrices P (original pixels → crop pixels), as DECA's demo computes it.

    Args:
        crop_matrix: (B, 3, 3) float32.
    Returns:
        (B, 3, 3) float32.
    """
    return torch.inverse(crop_matrix).transpose(1, 2)

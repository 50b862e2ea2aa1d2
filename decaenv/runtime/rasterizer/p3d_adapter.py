"""The `pytorch3d` backend: DECA's own rasterizer call, adapted to decaenv's frame and outputs.

DECA's `Pytorch3dRasterizer` negates x and y (pytorch3d's NDC has +x left, +y up) and calls
`rasterize_meshes(image_size=(h, w), blur_radius=0, faces_per_pixel=1, bin_size=None,
max_faces_per_bin=None, perspective_correct=False)`. The face vertices arrive already in the raster frame
(long axis scaled), so this adapter only mirrors them, builds one mesh per batch element from the
per-face vertices, and converts pytorch3d's packed face indices and -1 paddings to decaenv's layout.
Results equal the other backends' except where pytorch3d's own CUDA kernel rounds with fused
multiply-adds, or where its coarse binning overflows (it warns about that itself).
"""

from __future__ import annotations

from typing import Tuple

import torch


def rasterize_pytorch3d(
    fv: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rasterize with pytorch3d (see module docstring).

    Args:
        fv: (B, F, 3, 3) float32 face vertices in the raster frame; xs: (W,), ys: (H,) pixel centres
            (only their counts are used: pytorch3d computes the same centres itself).

    Returns:
        pix_to_face (B, H, W) int64 per-mesh face index or -1, bary (B, H, W, 3), zbuf (B, H, W).
    """
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    b_count, f_count = fv.shape[:2]
    h, w = ys.numel(), xs.numel()
    if f_count == 0:
        return (
            torch.full((b_count, h, w), -1, dtype=torch.int64, device=fv.device),
            torch.zeros((b_count, h, w, 3), device=fv.device),
            torch.full((b_count, h, w), -1.0, device=fv.device),
        )
    verts = fv.reshape(b_count, f_count * 3, 3).clone()
    verts[..., :2] = -verts[..., :2]
    faces = torch.arange(f_count * 3, device=fv.device).reshape(1, f_count, 3).expand(b_count, -1, -1)
    meshes = Meshes(verts=verts, faces=faces)
    pix_to_face, zbuf, bary, _ = rasterize_meshes(
        meshes,
        image_size=(h, w),
        blur_radius=0.0,
        faces_per_pixel=1,
        bin_size=None,
        max_faces_per_bin=None,
        perspective_correct=False,
    )
    pix_to_face, zbuf, bary = pix_to_face[..., 0], zbuf[..., 0], bary[..., 0, :]
    empty = pix_to_face < 0
    offset = (torch.arange(b_count, device=fv.device) * f_count).view(b_count, 1, 1)
    pix_to_face = torch.where(empty, torch.full_like(pix_to_face, -1), pix_to_face - offset)
    return pix_to_face, bary.masked_fill(empty[..., None], 0.0), zbuf.masked_fill(empty, -1.0)

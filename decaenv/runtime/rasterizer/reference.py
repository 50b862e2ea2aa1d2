"""The `reference` backend: naive and obviously correct, the oracle of the tests.

One Python loop over meshes and faces, in index order, with a z-buffer: each face is tested against
every pixel centre of its bounding box using the formulas of the `api` module docstring written out
in full, and replaces the stored face only when strictly nearer. Slow (about a second per FLAME
mesh); never chosen by "auto".
"""

from __future__ import annotations

from typing import Tuple

import torch

EPSILON = 1e-8  # pytorch3d's kEpsilon


def _edge(px, py, ax, ay, bx, by):
    """E(p, a, b) = (p.x - a.x)(b.y - a.y) - (p.y - a.y)(b.x - a.x), float32."""
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax)


def _face_is_skipped(v) -> bool:
    """v: nine float32 0-d tensors x0 y0 z0 x1 y1 z1 x2 y2 z2 (all arithmetic stays in float32)."""
    x0, y0, z0, x1, y1, z1, x2, y2, z2 = v
    if not all(bool(torch.isfinite(c)) for c in (x0, y0, x1, y1, x2, y2)):
        return True
    if max(float(z0), float(z1), float(z2)) < 0:
        return True
    return abs(float(_edge(x0, y0, x1, y1, x2, y2))) <= EPSILON


def _raster_one_face(v, xs, ys, zbest, face_id, bary_out, f) -> None:
    x0, y0, z0, x1, y1, z1, x2, y2, z2 = v
    in_x = (xs >= torch.minimum(torch.minimum(x0, x1), x2)) & (xs <= torch.maximum(torch.maximum(x0, x1), x2))
    in_y = (ys >= torch.minimum(torch.minimum(y0, y1), y2)) & (ys <= torch.maximum(torch.maximum(y0, y1), y2))
    cols, rows = torch.nonzero(in_x).flatten(), torch.nonzero(in_y).flatten()
    if cols.numel() == 0 or rows.numel() == 0:
        return
    area = (_edge(x2, y2, x0, y0, x1, y1).double() + EPSILON).float()  # epsilon added in double
    if not bool(torch.isfinite(area)):
        return
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    px, py = xs[c0:c1][None, :], ys[r0:r1][:, None]
    w0 = _edge(px, py, x1, y1, x2, y2) / area
    w1 = _edge(px, py, x2, y2, x0, y0) / area
    w2 = _edge(px, py, x0, y0, x1, y1) / area
    z = w0 * z0 + w1 * z1 + w2 * z2
    covered = (w0 > 0) & (w1 > 0) & (w2 > 0) & (z >= 0)
    z = z + 0.0  # -0 -> +0
    best = zbest[r0:r1, c0:c1]
    ids = face_id[r0:r1, c0:c1]
    nearer = covered & ((ids < 0) | (z < best))
    best[nearer] = z[nearer]
    ids[nearer] = f
    bary_out[r0:r1, c0:c1][nearer] = torch.stack([w0, w1, w2], dim=-1)[nearer]


def rasterize_reference(
    fv: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Naive rasterization (see the `api` module docstring for the semantics).

    Args:
        fv: (B, F, 3, 3) float32 face vertices in the raster frame.
        xs: (W,) float32 pixel-column centres; ys: (H,) float32 pixel-row centres.

    Returns:
        pix_to_face (B, H, W) int64, bary (B, H, W, 3) float32, zbuf (B, H, W) float32.
    """
    device = fv.device
    fv, xs, ys = fv.cpu(), xs.cpu(), ys.cpu()
    b_count, f_count = fv.shape[:2]
    h, w = ys.numel(), xs.numel()
    pix_to_face = torch.full((b_count, h, w), -1, dtype=torch.int64)
    bary = torch.zeros((b_count, h, w, 3), dtype=torch.float32)
    zbuf = torch.full((b_count, h, w), -1.0, dtype=torch.float32)
    for b in range(b_count):
        for f in range(f_count):
            v = fv[b, f].reshape(9).unbind()
            if not _face_is_skipped(v):
                _raster_one_face(v, xs, ys, zbuf[b], pix_to_face[b], bary[b], f)
    zbuf[pix_to_face < 0] = -1.0
    return pix_to_face.to(device), bary.to(device), zbuf.to(device)

"""The `torch` backend: vectorised pure PyTorch, on any device, no Python loop over faces.

Binning by bounding boxes: every valid face is expanded into the pixel rows of its bounding box
("spans"); each span is narrowed to the columns its three edges allow (a conservative interval); spans
are grouped by width, and the candidate (face, pixel) pairs are tested in chunks of at most
`PAIR_BUDGET` with the float32 expressions of `csrc/raster_math.h`. The depth test packs
(depth bits << 32 | face index) into one int64 per pair and keeps the per-pixel minimum with
`scatter_reduce(amin)`: nearest face first, lowest index on ties, independent of evaluation order.
The pairs that hold a pixel's minimum right after their group write its barycentrics and depth.
"""

from __future__ import annotations

from typing import Tuple

import torch

EPSILON = 1e-8  # pytorch3d's kEpsilon
#: Candidate (face, pixel) pairs per chunk: a few MB of temporaries, cache-friendly (2^18 was 0-8 % slower).
PAIR_BUDGET = 1 << 17
EMPTY_KEY = torch.iinfo(torch.int64).max
NARROW_MIN_WIDTH = 6  # narrow spans when they are this wide on average (measured break-even: ~5)

# Columns of the per-face table (see `face_table`).
X0, Y0, Z0, X1, Y1, Z1, X2, Y2, Z2, DX0, DY0, DX1, DY1, DX2, DY2, AREA = range(16)


def face_table(flat: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-face constants and validity, as `load_face` in raster_math.h computes them.

    Args:
        flat: (N, 9) float32 face vertices x0 y0 z0 x1 y1 z1 x2 y2 z2.

    Returns:
        table: (16, N) float32 rows X0 .. AREA.
        bbox: (N, 4) float32 xmin, xmax, ymin, ymax.
        valid: (N,) bool, faces that may cover a pixel.
    """
    x0, y0, z0, x1, y1, z1, x2, y2, z2 = flat.unbind(1)
    dx0, dy0, dx1, dy1, dx2, dy2 = x2 - x1, y2 - y1, x0 - x2, y0 - y2, x1 - x0, y1 - y0
    face_area = (x0 - x1) * dy0 - (y0 - y1) * dx0
    area = (((x2 - x0) * dy2 - (y2 - y0) * dx2).double() + EPSILON).float()
    table = torch.stack([x0, y0, z0, x1, y1, z1, x2, y2, z2, dx0, dy0, dx1, dy1, dx2, dy2, area])
    xs, ys = flat[:, 0::3], flat[:, 1::3]
    bbox = torch.stack([xs.amin(1), xs.amax(1), ys.amin(1), ys.amax(1)], dim=1)
    valid = (
        torch.isfinite(flat[:, [0, 1, 3, 4, 6, 7]]).all(1)
        & torch.isfinite(area)
        & ~(face_area.double().abs() <= EPSILON)
        & ~(flat[:, 2::3].amax(1) < 0)
    )
    return table, bbox, valid


def _spans(bbox: torch.Tensor, valid: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor):
    """Expand valid faces into (face, row) spans: face index, row, first column, pixel count."""
    c0 = torch.searchsorted(xs, bbox[:, 0].contiguous(), side="left")
    c1 = torch.searchsorted(xs, bbox[:, 1].contiguous(), side="right")
    r0 = torch.searchsorted(ys, bbox[:, 2].contiguous(), side="left")
    r1 = torch.searchsorted(ys, bbox[:, 3].contiguous(), side="right")
    n_cols = (c1 - c0).clamp_(min=0)
    n_rows = torch.where(valid & (n_cols > 0), (r1 - r0).clamp_(min=0), torch.zeros_like(r0))
    faces = torch.repeat_interleave(torch.arange(len(valid), device=xs.device), n_rows)
    first = torch.cumsum(n_rows, 0).sub_(n_rows)
    rows = (torch.arange(len(faces), device=xs.device) - first.index_select(0, faces)).add_(r0.index_select(0, faces))
    return faces, rows, c0.index_select(0, faces), n_cols.index_select(0, faces)


def _width_buckets(n_cols: torch.Tensor):
    """Group spans by padded width: powers of two from 2 (face order kept inside a bucket).

    Returns:
        A list of (span indices, padded width), one per non-empty bucket; empty spans are left out.
    """
    top = int(n_cols.max())
    edges = [2]
    while edges[-1] < top:
        edges.append(edges[-1] * 2)
    bucket = torch.searchsorted(torch.tensor(edges, device=n_cols.device), n_cols, side="left")
    bucket.masked_fill_(n_cols == 0, len(edges))  # an extra bucket that is never visited
    counts = torch.bincount(bucket, minlength=len(edges) + 1).tolist()[: len(edges)]
    return [(torch.nonzero(bucket == b).flatten(), min(edges[b], top)) for b, count in enumerate(counts) if count]


def _span_table(table: torch.Tensor, faces, rows, ys) -> torch.Tensor:
    """(13, S) per-span constants of the edge functions e_k(x) = (x - a_k) d_k - q_k (k = 0, 1, 2).

    Rows: a_0..a_2, d_0..d_2, q_0..q_2 (the row term, constant along the span), area, z0, z1, z2.
    """
    t = table.index_select(1, faces)
    py = ys.index_select(0, rows)
    q0 = (py - t[Y1]).mul_(t[DX0])
    q1 = (py - t[Y2]).mul_(t[DX1])
    q2 = (py - t[Y0]).mul_(t[DX2])
    return torch.stack([t[X1], t[X2], t[X0], t[DY0], t[DY1], t[DY2], q0, q1, q2, t[AREA], t[Z0], t[Z1], t[Z2]])


def _narrow(st: torch.Tensor, first_col: torch.Tensor, n_cols: torch.Tensor, xs: torch.Tensor):
    """Shrink each span to the columns that can pass the inside test (a conservative superset).

    Along a row each edge function is linear in x: e_k(x) = (x - a_k) d_k - q_k, so the columns where all
    three have the sign of the area form an interval around the roots a_k + q_k / d_k. The interval is
    widened by two pixels plus 4e-6 of the magnitudes involved (over 30 times the float32 rounding of
    both the test and this computation), so no pixel the exact test accepts is dropped. Edges with
    d_k = 0 are exact: e_k = -q_k on the whole row.

    Returns:
        first_col, n_cols: (S,) narrowed spans (n_cols 0 for spans that cannot cover anything).
    """
    a, d, q = st[0:3], st[3:6], st[6:9]
    signed = st[9] != 0  # a zero denominator (never seen in practice) gets no narrowing at all
    sigma = torch.where(st[9] < 0, -1.0, 1.0)
    spacing = float(xs[-1] - xs[0]) / (len(xs) - 1) if len(xs) > 1 else 1.0
    reach = torch.maximum(
        (xs.index_select(0, first_col) - a).abs_(), (xs.index_select(0, first_col + n_cols - 1) - a).abs_()
    )
    ratio = q / d
    root = a + ratio
    delta = reach.add_(ratio.abs()).add_(a.abs()).mul_(4e-6).add_(2 * spacing)
    lower, upper = root - delta, root + delta
    usable = torch.isfinite(lower) & torch.isfinite(upper) & signed
    lower = lower.masked_fill_(~(usable & (sigma * d > 0)), -float("inf")).amax(0)
    upper = upper.masked_fill_(~(usable & (sigma * d < 0)), float("inf")).amin(0)
    dead = ((d == 0) & ~(-sigma * q > 0) & signed).any(0)
    lo = torch.maximum(first_col, torch.searchsorted(xs, lower, side="left"))
    hi = torch.minimum(first_col + n_cols, torch.searchsorted(xs, upper, side="right"))
    return lo, (hi - lo).clamp_(min=0).masked_fill_(dead, 0)


def _test_group(out, st, first_col, n_cols, face_local, row_base, xs_pad, width: int) -> None:
    """Depth-test every pixel of a group of spans of padded width `width` (updates `out` in place).

    After the group's keys are merged into the per-pixel minimum, the pairs that now hold the minimum
    write their barycentrics and depth: a later group can only replace them with a smaller key, so the
    values left at the end are the final winner's.
    """
    keys, bary, zbuf = out
    k = torch.arange(width, device=keys.device)
    px = xs_pad.unfold(0, width, 1).index_select(0, first_col)  # (S, width) candidate pixel centres
    w = (px[None] - st[0:3, :, None]).mul_(st[3:6, :, None]).sub_(st[6:9, :, None]).div_(st[9, None, :, None])
    ok = (w.amin(0) > 0).logical_and_(k < n_cols[:, None])  # NaN propagates through amin: not inside
    z = (w[0] * st[10, :, None]).add_(w[1] * st[11, :, None]).add_(w[2] * st[12, :, None])
    ok.logical_and_(z >= 0)
    z.add_(0.0)  # -0 -> +0: the bit pattern now orders like the value
    key = z.view(torch.int32).to(torch.int64).bitwise_left_shift_(32).bitwise_or_(face_local[:, None])
    key.masked_fill_(~ok, EMPTY_KEY)
    pixel = (row_base[:, None] + (first_col[:, None] + k).clamp_(max=xs_pad.numel() - width)).flatten()
    key = key.flatten()
    keys.scatter_reduce_(0, pixel, key, reduce="amin")
    won = torch.nonzero((keys.index_select(0, pixel) == key).logical_and_(ok.flatten())).flatten()
    target = pixel.index_select(0, won)
    bary.index_copy_(0, target, w.flatten(1).index_select(1, won).t())
    zbuf.index_copy_(0, target, z.flatten().index_select(0, won))


def rasterize_vectorized(
    fv: torch.Tensor,
    xs: torch.Tensor,
    ys: torch.Tensor,
    pair_budget: int = PAIR_BUDGET,
    narrow_min_width: float = NARROW_MIN_WIDTH,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Binned, chunked, vectorised rasterization (semantics: `api` module docstring).

    Args:
        fv: (B, F, 3, 3) float32 face vertices in the raster frame.
        xs: (W,) float32 column centres; ys: (H,) float32 row centres (same device).
        pair_budget: most candidate (face, pixel) pairs tested at once.
        narrow_min_width: narrow the spans when their mean width is at least this (0: always).

    Returns:
        pix_to_face (B, H, W) int64, bary (B, H, W, 3) float32, zbuf (B, H, W) float32.
    """
    b_count, f_count = fv.shape[:2]
    h, w = ys.numel(), xs.numel()
    if f_count == 0:
        return (
            torch.full((b_count, h, w), -1, dtype=torch.int64, device=fv.device),
            torch.zeros((b_count, h, w, 3), device=fv.device),
            torch.full((b_count, h, w), -1.0, device=fv.device),
        )
    table, bbox, valid = face_table(fv.reshape(-1, 9))
    spans = _spans(bbox, valid, xs, ys)
    keys = torch.full((b_count * h * w,), EMPTY_KEY, dtype=torch.int64, device=fv.device)
    bary = torch.zeros((b_count * h * w, 3), dtype=torch.float32, device=fv.device)
    zbuf = torch.full((b_count * h * w,), -1.0, dtype=torch.float32, device=fv.device)
    faces, rows, first_col, n_cols = spans
    if len(faces):
        st = _span_table(table, faces, rows, ys)
        if len(faces) * narrow_min_width <= int(n_cols.sum()):  # worth it for wide spans only
            first_col, n_cols = _narrow(st, first_col, n_cols, xs)
        face_local, row_base = faces % f_count, ((faces // f_count) * h + rows) * w
        for group, width in _width_buckets(n_cols):
            xs_pad = torch.cat([xs, xs[-1:].expand(width - 1)])
            step = max(1, pair_budget // width)
            for s in range(0, len(group), step):
                g = group[s : s + step]
                _test_group(
                    (keys, bary, zbuf),
                    st.index_select(1, g),
                    first_col.index_select(0, g),
                    n_cols.index_select(0, g),
                    face_local.index_select(0, g),
                    row_base.index_select(0, g),
                    xs_pad,
                    width,
                )
    pix_to_face = torch.where(keys == EMPTY_KEY, -1, keys & 0xFFFFFFFF)
    return pix_to_face.view(b_count, h, w), bary.view(b_count, h, w, 3), zbuf.view(b_count, h, w)

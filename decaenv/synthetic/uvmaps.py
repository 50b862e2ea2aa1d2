"""UV-space assets for synthetic data dirs: masks, mean texture, fixed displacement, dense template.

Everything is derived from one UV rasterization of the topology at DECA's texel-centre convention
(texel (row i, col j) samples u = (2j+1)/2S, v = 1 - (2i+1)/2S, deca-spec §6.5), so the files are
consistent with each other and with the mesh.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from decaenv.synthetic.topology import Topology


def rasterize_uv(vt: np.ndarray, ft: np.ndarray, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Which UV triangle covers each texel centre, and where.

    Args:
        vt: (T, 2) UVs in [0, 1]. ft: (F, 3) UV triangles. size: S, the map size.
    Returns:
        face (S, S) int64 (-1 where uncovered; the last triangle in file order wins on shared edges)
        and bary (S, S, 3) float64 barycentric weights of the texel centre in that triangle.
    """
    face = np.full((size, size), -1, np.int64)
    bary = np.zeros((size, size, 3))
    px = vt[:, 0] * size - 0.5  # texel-centre pixel coordinates
    py = (1.0 - vt[:, 1]) * size - 0.5
    for idx, (a, b, c) in enumerate(ft):
        xs, ys = px[[a, b, c]], py[[a, b, c]]
        x0, x1 = max(int(np.ceil(xs.min())), 0), min(int(np.floor(xs.max())), size - 1)
        y0, y1 = max(int(np.ceil(ys.min())), 0), min(int(np.floor(ys.max())), size - 1)
        if x1 < x0 or y1 < y0:
            continue
        det = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (ys[1] - ys[0])
        if det == 0:
            continue
        X, Y = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
        w1 = ((X - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (Y - ys[0])) / det
        w2 = ((xs[1] - xs[0]) * (Y - ys[0]) - (X - xs[0]) * (ys[1] - ys[0])) / det
        w0 = 1.0 - w1 - w2
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        rows, cols = Y[inside], X[inside]
        face[rows, cols] = idx
        bary[rows, cols] = np.stack([w0[inside], w1[inside], w2[inside]], 1)
    return face, bary


def surface_points(topo: Topology, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """(S, S, 3) surface positions at covered texels (zeros elsewhere)."""
    pts = np.zeros(face.shape + (3,))
    covered = face >= 0
    corners = topo.v[topo.f[face[covered]]]  # N,3,3
    pts[covered] = np.einsum("nk,nkc->nc", bary[covered], corners)
    return pts


def _smooth(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0, 1)
    return t * t * (3 - 2 * t)


def face_masks(topo: Topology, face: np.ndarray, pts: np.ndarray, eye_faces: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Soft face+eye mask and face-only mask (S, S) in [0, 1] from the 3D position of each texel."""
    covered = face >= 0
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    zmax = topo.v[:, 2].max()
    region = _smooth(z, 0.25 * zmax, 0.55 * zmax) * _smooth(y, -0.075, -0.05) * (1 - _smooth(y, 0.06, 0.085))
    region *= 1 - _smooth(np.abs(x), 0.055, 0.07)
    region[~covered] = 0.0
    on_eye = np.isin(face, eye_faces) & covered
    face_eye = region.copy()
    face_eye[on_eye] = 1.0
    face_only = region.copy()
    face_only[on_eye] = 0.0
    return face_eye, face_only


def fixed_displacement(face_eye_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(S, S) float64 static wrinkles within about ±1.5 mm, zero outside the face region."""
    size = face_eye_mask.shape[0]
    yy, xx = np.mgrid[0:size, 0:size] / size
    field = np.zeros((size, size))
    for _ in range(6):
        fx, fy, ph = rng.uniform(4, 14), rng.uniform(4, 14), rng.uniform(0, 2 * np.pi)
        field += np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
    field *= 0.0013 / np.abs(field).max()
    out = field * (face_eye_mask > 0.5)
    return np.round(out, 6)


def mean_texture(topo: Topology, pts: np.ndarray, face: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 skin-coloured texture with darker brows and redder lips; grey off the islands."""
    colour = np.empty(face.shape + (3,))
    colour[:] = (0.5, 0.5, 0.5)
    covered = face >= 0
    skin = np.array([0.86, 0.66, 0.55])
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    shade = 0.9 + 0.1 * np.tanh(z / 0.05)
    colour[covered] = skin * shade[covered, None]
    lips = np.exp(-((y + 0.027) / 0.006) ** 2 - (x / 0.025) ** 2) * (z > 0)
    colour[covered] = (1 - lips[covered, None]) * colour[covered] + lips[covered, None] * np.array([0.72, 0.35, 0.35])
    return np.clip(np.round(colour * 255), 0, 255).astype(np.uint8)


def dense_template(face: np.ndarray, bary: np.ndarray, topo_f: np.ndarray, img_size: int) -> Dict[str, object]:
    """DECA's `texture_data_<S>.npy` dict (deca-spec §6.1, §6.9) for the covered texels.

    Returns:
        img_size int; x_coords, y_coords (N,) int64 texel columns/rows; valid_pixel_ids (N,) int64
        (row * S + col); valid_pixel_3d_faces (N, 3) int64 FLAME vertex ids of the covering triangle;
        valid_pixel_b_coords (N, 3) float64 weights; f (M, 3) int64 dense triangles over the valid texels
        (the quad split of DECA's `generate_triangles`, kept where all three texels are valid).
    """
    rows, cols = np.nonzero(face >= 0)
    ids = rows * img_size + cols
    index = np.full(img_size * img_size, -1, np.int64)
    index[ids] = np.arange(len(ids))
    tris = []
    grid = np.arange(img_size * img_size).reshape(img_size, img_size)
    p = grid[:-1, :-1].ravel()
    for corners in ((p, p + img_size, p + 1), (p + 1, p + img_size, p + img_size + 1)):
        idx = np.stack([index[c] for c in corners], 1)
        tris.append(idx[(idx >= 0).all(1)])
    return {
        "img_size": img_size,
        "f": np.concatenate(tris).astype(np.int64),
        "x_coords": cols.astype(np.int64),
        "y_coords": rows.astype(np.int64),
        "valid_pixel_ids": ids.astype(np.int64),
        "valid_pixel_3d_faces": topo_f[face[rows, cols]].astype(np.int64),
        "valid_pixel_b_coords": bary[rows, cols].astype(np.float64),
    }

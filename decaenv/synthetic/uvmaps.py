"""UV-space assets for synthetic data dirs: masks, mean texture, fixed displacement.

Everything is derived from one UV rasterization (`decaenv.uvlayout.rasterize_uv`) of the topology at DECA's texel-centre convention
(texel (row i, col j) samples u = (2j+1)/2S, v = 1 - (2i+1)/2S, deca-spec §6.5), so the files are
consistent with each other and with the mesh.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from decaenv.synthetic.topology import Topology


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

"""A synthetic `landmark_embedding.npy` for the procedural head (deca-spec §4.3 keys and types).

The 68 landmarks follow the iBUG-68 order (contour 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth
48-67) on a face template drawn from simple curves in a face frame (X right, Y down, about [-1, 1]),
then embedded on the head surface. The 79 dynamic contour rows move the 17 contour points towards the
silhouette as the head turns (row r is yaw r degrees for r <= 39, yaw 39 - r for r >= 40).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from decaenv.synthetic.topology import Topology, face_to_param, param_to_face

N_DYNAMIC_ROWS = 79


def _ellipse(cx: float, cy: float, rx: float, ry: float, angles_deg) -> np.ndarray:
    a = np.deg2rad(np.asarray(angles_deg, float))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def contour_template(spread: float = 1.0) -> np.ndarray:
    """The 17 jaw-contour points (17, 2): a U from the image-left temple round the chin to the right."""
    alpha = np.deg2rad(np.linspace(-90, 90, 17))
    return np.stack([0.92 * spread * np.sin(alpha), -0.2 + 1.05 * np.cos(alpha)], 1)


def face_template() -> np.ndarray:
    """(68, 2) iBUG-68 landmarks in the face frame (image-left = subject's right, listed first)."""
    brow_x = np.linspace(-0.75, -0.15, 5)
    brow_r = np.stack([brow_x, -0.55 - 0.1 * np.sin(np.linspace(0.2, np.pi - 0.2, 5))], 1)
    brow_l = brow_r[::-1] * np.array([-1, 1])
    bridge = np.stack([np.zeros(4), np.linspace(-0.4, 0.02, 4)], 1)
    nostrils = np.stack([np.linspace(-0.2, 0.2, 5), 0.15 + 0.03 * np.cos(np.linspace(-1.2, 1.2, 5))], 1)
    eye_angles = [180, 225, 315, 0, 45, 135]  # outer/inner corner, top, corner, bottom (y down)
    eye_r = _ellipse(-0.4, -0.3, 0.17, 0.06, eye_angles)
    eye_l = _ellipse(0.4, -0.3, 0.17, 0.06, [180, 225, 315, 0, 45, 135])
    mouth_out = _ellipse(0.0, 0.45, 0.38, 0.14, [180, 210, 240, 270, 300, 330, 0, 30, 60, 90, 120, 150])
    mouth_in = _ellipse(0.0, 0.45, 0.26, 0.05, [180, 225, 270, 315, 0, 45, 90, 135])
    return np.concatenate([contour_template(), brow_r, brow_l, bridge, nostrils, eye_r, eye_l, mouth_out, mouth_in])


def _yaw_of_row(row: int) -> float:
    return float(row) if row <= 39 else float(39 - row)


def _embed(topo: Topology, xy: np.ndarray, phi_shift: Optional[np.ndarray] = None):
    phi, theta = face_to_param(xy[:, 0], xy[:, 1])
    if phi_shift is not None:
        phi = np.clip(phi + phi_shift, -1.45, 1.45)
    return param_to_face(topo, phi, theta)


def landmark_embedding(topo: Topology) -> Dict[str, object]:
    """The embedding dict (dynamic entries as torch tensors, like the real file).

    Returns:
        static_lmk_faces_idx (51,) int64, static_lmk_bary_coords (51,3) float64,
        dynamic_lmk_faces_idx (79,17) torch.int64, dynamic_lmk_bary_coords (79,17,3) torch.float32,
        full_lmk_faces_idx (1,68) int64, full_lmk_bary_coords (1,68,3) float32.
    """
    import torch

    template = face_template()
    full_xy = np.concatenate([contour_template(spread=0.97), template[17:]])
    full_faces, full_bary = _embed(topo, full_xy)
    static_faces, static_bary = _embed(topo, template[17:])
    lateral = np.abs(np.sin(np.deg2rad(np.linspace(-90, 90, 17))))
    dyn_faces = np.zeros((N_DYNAMIC_ROWS, 17), np.int64)
    dyn_bary = np.zeros((N_DYNAMIC_ROWS, 17, 3))
    for row in range(N_DYNAMIC_ROWS):
        shift = -np.deg2rad(_yaw_of_row(row)) * lateral
        dyn_faces[row], dyn_bary[row] = _embed(topo, template[:17], shift)
    return {
        "static_lmk_faces_idx": static_faces.astype(np.int64),
        "static_lmk_bary_coords": static_bary.astype(np.float64),
        "dynamic_lmk_faces_idx": torch.from_numpy(dyn_faces),
        "dynamic_lmk_bary_coords": torch.from_numpy(dyn_bary.astype(np.float32)),
        "full_lmk_faces_idx": full_faces.astype(np.int64)[None],
        "full_lmk_bary_coords": full_bary.astype(np.float32)[None],
    }

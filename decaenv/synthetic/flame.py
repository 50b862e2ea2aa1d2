"""A synthetic FLAME 2020 `generic_model.pkl`: FLAME's keys, shapes, types and pickle format.

Values are random but plausible (smooth shape and expression directions, skinning weights and joints
derived from the geometry), so the runtime produces a head, not noise. The file references
`chumpy.ch.Ch` exactly as the real one does, so loading it with plain `pickle` fails without chumpy —
the real-world failure decaenv exists to remove.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from decaenv.loaders.legacy_pickle import ChumpyCh, dumps
from decaenv.synthetic.topology import Topology

N_SHAPE, N_EXPR, N_POSE_FEATURES = 300, 100, 36
ROOT_SENTINEL = 4294967295  # kintree_table's parent of the root (uint32 -1)


def connected_components(n_vertices: int, faces: np.ndarray) -> np.ndarray:
    """Component label (N,) int64 per vertex (union-find over the triangle edges)."""
    parent = np.arange(n_vertices)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b, c in faces:
        for x, y in ((a, b), (b, c)):
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
    roots = np.array([find(i) for i in range(n_vertices)])
    _, labels = np.unique(roots, return_inverse=True)
    return labels.astype(np.int64)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _rbf_fields(v: np.ndarray, centres: np.ndarray, sigma: float, rng: np.random.Generator,
                amplitude: np.ndarray) -> np.ndarray:
    """K smooth displacement fields (V, 3, K): each a sum of Gaussian bumps with random directions.

    Args:
        v: (V, 3) positions. centres: (K, M, 3) bump centres per field. amplitude: (K,) scale per field.
    """
    k, m, _ = centres.shape
    directions = rng.standard_normal((k, m, 3))
    weights = np.exp(-np.sum((v[None, None] - centres[:, :, None]) ** 2, -1) / (2 * sigma ** 2))  # K,M,V
    fields = np.einsum("kmv,kmc->vck", weights, directions)
    return fields * amplitude[None, None] / max(np.abs(fields).max(), 1e-12)


def _joints(v: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Joint regressor (5, V) and the eye components, from the geometry.

    Root, neck and jaw are averages of horizontal slices of the head surface (points on the vertical
    axis); the eyes are the averages of the eyeball components (or of the eye regions without them).
    """
    sizes = np.bincount(labels)
    head = labels == np.argmax(sizes)
    small = [c for c in np.argsort(-sizes)[1:3] if sizes[c] > 20]
    ymin, ymax = v[head, 1].min(), v[head, 1].max()
    height = ymax - ymin
    regressor = np.zeros((5, len(v)))
    for joint, frac in ((0, 0.12), (1, 0.22), (2, 0.42)):
        y = ymin + frac * height
        band = head & (np.abs(v[:, 1] - y) < 0.03 * height)
        regressor[joint, band] = 1.0 / band.sum()
    eyes = sorted(small, key=lambda c: v[labels == c, 0].mean())
    if len(eyes) == 2:
        for joint, comp in zip((3, 4), eyes):
            members = labels == comp
            regressor[joint, members] = 1.0 / members.sum()
    else:  # no eyeball components: regress the eyes from the upper front of the face
        for joint, side in ((3, -1), (4, 1)):
            region = head & (side * v[:, 0] > 0.02) & (v[:, 1] > ymin + 0.6 * height) & (v[:, 2] > 0)
            regressor[joint, region] = 1.0 / max(region.sum(), 1)
    return regressor, np.array(eyes, dtype=np.int64)


def _skinning_weights(v: np.ndarray, labels: np.ndarray, eyes: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(V, 5) weights: eyeballs follow their eye joint, the lower front face the jaw, the neck blends
    root and neck, the rest of the head follows the neck joint."""
    w = np.zeros((len(v), 5))
    head = ~np.isin(labels, eyes)
    neck_y, jaw_y = joints[1, 1], joints[2, 1]
    t_neck = _smoothstep((v[:, 1] - (neck_y - 0.02)) / 0.04)
    mouth_y = jaw_y - 0.02  # the lips sit about 2 cm below the jaw joint
    jaw = _smoothstep((mouth_y + 0.005 - v[:, 1]) / 0.02) * _smoothstep((v[:, 2] - 0.0) / 0.04)
    jaw *= _smoothstep((v[:, 1] - (neck_y - 0.01)) / 0.03)
    w[head, 2] = jaw[head]
    rest = 1.0 - w[:, 2]
    w[head, 1] = (rest * t_neck)[head]
    w[head, 0] = (rest * (1 - t_neck))[head]
    for joint, comp in zip((3, 4), eyes):
        w[labels == comp] = 0.0
        w[labels == comp, joint] = 1.0
    return w


def flame_arrays(topo: Topology, rng: np.random.Generator) -> Dict[str, object]:
    """FLAME's arrays for a topology (float64 like the real file; `f` uint32).

    Returns:
        dict with v_template (V,3), shapedirs (V,3,400), posedirs (V,3,36), J_regressor (5,V) dense,
        weights (V,5), kintree_table (2,5) int64, J (5,3), f (F,3) uint32.
    """
    v = topo.v.astype(np.float64)
    labels = connected_components(len(v), topo.f)
    regressor, eyes = _joints(v, labels)
    joints = regressor @ v
    weights = _skinning_weights(v, labels, eyes, joints)
    head_idx = np.flatnonzero(labels == np.argmax(np.bincount(labels)))
    front = head_idx[v[head_idx, 2] > 0.02]
    lower = front[v[front, 1] < joints[2, 1] + 0.02]
    shape_centres = v[rng.choice(head_idx, size=(N_SHAPE, 4))]
    shape_amp = 0.006 / (1.0 + np.arange(N_SHAPE) / 15.0)
    expr_centres = v[rng.choice(lower if len(lower) else front, size=(N_EXPR, 3))]
    expr_amp = 0.004 / (1.0 + np.arange(N_EXPR) / 20.0)
    shapedirs = np.concatenate([_rbf_fields(v, shape_centres, 0.05, rng, shape_amp),
                                _rbf_fields(v, expr_centres, 0.025, rng, expr_amp)], axis=2)
    pose_centres = v[rng.choice(head_idx, size=(N_POSE_FEATURES, 2))]
    posedirs = _rbf_fields(v, pose_centres, 0.04, rng, np.full(N_POSE_FEATURES, 1e-3))
    kintree = np.array([[ROOT_SENTINEL, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    return {"v_template": v, "shapedirs": shapedirs, "posedirs": posedirs, "J_regressor": regressor,
            "weights": weights, "kintree_table": kintree, "J": joints, "f": topo.f.astype(np.uint32)}


def flame_pickle_bytes(arrays: Dict[str, object]) -> bytes:
    """Serialise FLAME arrays like FLAME 2020's `generic_model.pkl` (protocol 2, chumpy `shapedirs`,
    sparse `J_regressor`)."""
    import scipy.sparse

    model = {
        "f": arrays["f"],
        "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"]),
        "kintree_table": arrays["kintree_table"],
        "J": arrays["J"],
        "weights": arrays["weights"],
        "posedirs": arrays["posedirs"],
        "v_template": arrays["v_template"],
        "shapedirs": ChumpyCh(arrays["shapedirs"]),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    return dumps(model, protocol=2, impersonate={id(ChumpyCh): ("chumpy.ch", "Ch")})

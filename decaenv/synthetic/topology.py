"""Head topology for synthetic assets: DECA's real public topology, or a procedural head.

The procedural head has exactly FLAME's counts (5,023 vertices, 9,976 triangles), so validators written
for FLAME accept it: a head surface of 73 latitude rings × 60 longitudes closed by a pole at the top and
open at the neck (4,381 vertices, 8,700 triangles) plus two eyeballs of 11 rings × 29 longitudes and two
poles each (321 vertices, 638 triangles each). Units are metres, y up, z towards the viewer, the face at
+z, like FLAME. The UV layout unrolls the head by longitude (the seam at the back, so the face sits in
the middle of the map) and puts the eyeballs in two small patches at the bottom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np
from numpy.typing import ArrayLike

# Head grid and eyeball grid sizes (see the module docstring for why these numbers).
HEAD_RINGS, HEAD_COLS = 73, 60
EYE_RINGS, EYE_COLS = 11, 29
THETA_TOP, THETA_NECK = 0.07 * np.pi, 0.80 * np.pi  # polar angle (from +y) of the first and last ring
AXES = np.array([0.078, 0.112, 0.092])  # ellipsoid semi-axes x, y, z
EYE_RADIUS = 0.0125
# Face-frame → head-parameter mapping used by landmarks and features: phi = PHI_SCALE * X,
# theta = pi/2 + THETA_SCALE * Y, for face coordinates X (right) and Y (down) in about [-1, 1].
PHI_SCALE, THETA_SCALE = 1.35, 0.17 * np.pi
EYE_CENTRES_XY = ((-0.4, -0.3), (0.4, -0.3))  # image-left (subject's right) eye first


@dataclass(frozen=True)
class Topology:
    """A head mesh with UVs.

    Attributes:
        v: (V, 3) float64 rest positions (metres).
        f: (F, 3) int64 triangles, counter-clockwise seen from outside.
        vt: (T, 2) float64 UV coordinates in [0, 1] (v up).
        ft: (F, 3) int64 UV indices per triangle.
        source: "procedural" or the folder the real topology came from.
        grid: procedural only: `face_of_cell` (rings-1, cols, 2) face indices of the head grid.
    """

    v: np.ndarray
    f: np.ndarray
    vt: np.ndarray
    ft: np.ndarray
    source: str
    grid: Dict[str, np.ndarray] = field(default_factory=dict)


def face_to_param(x: ArrayLike, y: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """Map face-frame coordinates (X right, Y down) to head parameters (phi, theta) in radians."""
    return PHI_SCALE * np.asarray(x, float), np.pi / 2 + THETA_SCALE * np.asarray(y, float)


def _gauss(phi, theta, phi0, theta0, s_phi, s_theta):
    return np.exp(-0.5 * (((phi - phi0) / s_phi) ** 2 + ((theta - theta0) / s_theta) ** 2))


def _head_radius_factor(phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Radial scale of the ellipsoid: narrows into a neck and carries nose, brows, sockets, lips, chin."""
    neck = np.clip((theta - 0.62 * np.pi) / (THETA_NECK - 0.62 * np.pi), 0, 1)
    base = 1.0 - 0.42 * neck**1.5
    front = np.clip(np.cos(phi), 0, 1) ** 2
    (nose_p, nose_t) = face_to_param(0.0, -0.02)
    bumps = 0.20 * _gauss(phi, theta, nose_p, nose_t, 0.10, 0.045)  # nose tip
    bumps += 0.10 * _gauss(phi, theta, nose_p, nose_t - 0.10, 0.06, 0.09)  # bridge
    for ex, ey in EYE_CENTRES_XY:
        p, t = face_to_param(ex, ey)
        bumps -= 0.07 * _gauss(phi, theta, p, t, 0.13, 0.05)  # socket
        bumps += 0.04 * _gauss(phi, theta, p, t - 0.09, 0.16, 0.03)  # brow
    p, t = face_to_param(0.0, 0.45)
    bumps += 0.05 * _gauss(phi, theta, p, t, 0.22, 0.035)  # lips
    bumps -= 0.03 * _gauss(phi, theta, p, t + 0.05, 0.2, 0.02)  # below the lip
    p, t = face_to_param(0.0, 0.82)
    bumps += 0.06 * _gauss(phi, theta, p, t, 0.25, 0.05)  # chin
    return base * (1.0 + front * bumps)


def _head_position(phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    r = _head_radius_factor(phi, theta)
    return np.stack(
        [AXES[0] * r * np.sin(theta) * np.sin(phi), AXES[1] * np.cos(theta), AXES[2] * r * np.sin(theta) * np.cos(phi)],
        axis=-1,
    )


def _head(rings: int, cols: int):
    theta = np.linspace(THETA_TOP, THETA_NECK, rings)
    phi = -np.pi + 2 * np.pi * np.arange(cols) / cols
    T, P = np.meshgrid(theta, phi, indexing="ij")
    verts = np.concatenate([[[0.0, AXES[1], 0.0]], _head_position(P, T).reshape(-1, 3)])

    def vid(i: int, j: int) -> int:
        return 1 + i * cols + (j % cols)

    # UVs: (cols+1) per ring (duplicated seam column), one pole vt per column.
    u = np.arange(cols + 1) / cols
    vv = 0.96 - 0.80 * np.arange(rings) / (rings - 1)
    UU, VV = np.meshgrid(u, vv)
    vts = np.concatenate(
        [np.stack([(np.arange(cols) + 0.5) / cols, np.full(cols, 0.98)], 1), np.stack([UU.ravel(), VV.ravel()], 1)]
    )

    def tid(i: int, j: int) -> int:
        return cols + i * (cols + 1) + j

    faces, uvfaces = [], []
    for j in range(cols):  # pole fan
        faces.append([0, vid(0, j), vid(0, j + 1)])
        uvfaces.append([j, tid(0, j), tid(0, j + 1)])
    face_of_cell = np.zeros((rings - 1, cols, 2), np.int64)
    for i in range(rings - 1):
        for j in range(cols):
            face_of_cell[i, j] = (len(faces), len(faces) + 1)
            faces += [[vid(i, j), vid(i + 1, j), vid(i, j + 1)], [vid(i, j + 1), vid(i + 1, j), vid(i + 1, j + 1)]]
            uvfaces += [[tid(i, j), tid(i + 1, j), tid(i, j + 1)], [tid(i, j + 1), tid(i + 1, j), tid(i + 1, j + 1)]]
    return verts, np.array(faces), vts, np.array(uvfaces), face_of_cell


def _eyeball(centre: np.ndarray, uv_origin: Tuple[float, float], uv_size: float):
    """Sphere with poles on the z axis (front pole = pupil), its own UV patch."""
    th = np.pi * np.arange(1, EYE_RINGS + 1) / (EYE_RINGS + 1)
    ps = 2 * np.pi * np.arange(EYE_COLS) / EYE_COLS
    T, P = np.meshgrid(th, ps, indexing="ij")
    ring = np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], -1).reshape(-1, 3)
    verts = centre + EYE_RADIUS * np.concatenate([[[0, 0, 1.0]], ring, [[0, 0, -1.0]]])
    back = 1 + EYE_RINGS * EYE_COLS

    def vid(k: int, m: int) -> int:
        return 1 + k * EYE_COLS + (m % EYE_COLS)

    # UVs: polar projection of the sphere into a square patch (centre = pupil).
    rad = 0.5 * uv_size * (np.concatenate([[0.0], np.repeat(th, EYE_COLS), [np.pi]]) / np.pi)
    ang = np.concatenate([[0.0], np.tile(ps, EYE_RINGS), [0.0]])
    cx, cy = uv_origin[0] + uv_size / 2, uv_origin[1] + uv_size / 2
    vts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
    faces = [[0, vid(0, m), vid(0, m + 1)] for m in range(EYE_COLS)]
    for k in range(EYE_RINGS - 1):
        for m in range(EYE_COLS):
            faces += [[vid(k, m), vid(k + 1, m), vid(k, m + 1)], [vid(k, m + 1), vid(k + 1, m), vid(k + 1, m + 1)]]
    faces += [[back, vid(EYE_RINGS - 1, m + 1), vid(EYE_RINGS - 1, m)] for m in range(EYE_COLS)]
    face_array = np.array(faces)
    # The back pole's UV would sit on the patch rim at one angle; the seam is hidden inside the head.
    return verts, face_array, vts, face_array.copy()


def orient_outward(v: np.ndarray, f: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Flip triangles whose normal points towards `centre` (for star-shaped components)."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    inward = np.einsum("ij,ij->i", n, (a + b + c) / 3 - centre) < 0
    out = f.copy()
    out[inward] = out[inward][:, [0, 2, 1]]
    return out


def procedural_head() -> Topology:
    """The procedural FLAME-sized head (deterministic; no randomness)."""
    hv, hf, hvt, hft, face_of_cell = _head(HEAD_RINGS, HEAD_COLS)
    parts_v, parts_f, parts_vt, parts_ft = [hv], [hf], [hvt], [hft]
    for k, (ex, ey) in enumerate(EYE_CENTRES_XY):
        p, t = face_to_param(ex, ey)
        surface = _head_position(np.array(p), np.array(t))
        centre = surface * np.array([1.0, 1.0, 1.0]) - np.array([0.0, 0.0, EYE_RADIUS * 0.55])
        ev, ef, evt, eft = _eyeball(centre, (0.04 + 0.8 * k, 0.01), 0.12)
        parts_f.append(orient_outward(ev, ef, centre) + sum(len(x) for x in parts_v))
        parts_ft.append(eft + sum(len(x) for x in parts_vt))
        parts_v.append(ev)
        parts_vt.append(evt)
    v = np.concatenate(parts_v)
    f = np.concatenate(parts_f).astype(np.int64)
    f[: len(hf)] = orient_outward(v, f[: len(hf)], np.array([0.0, 0.0, 0.0]))
    return Topology(
        v=v,
        f=f,
        vt=np.concatenate(parts_vt),
        ft=np.concatenate(parts_ft).astype(np.int64),
        source="procedural",
        grid={"face_of_cell": face_of_cell},
    )


def param_to_face(topo: Topology, phi: np.ndarray, theta: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Barycentric embedding of head-parameter points on the procedural head grid.

    Args:
        phi, theta: (N,) longitudes (0 = front) and polar angles in radians.
    Returns:
        faces (N,) int64 triangle indices and bary (N, 3) float64 weights for `topo.f[faces]`'s corners.
    """
    fi = (np.asarray(theta) - THETA_TOP) / (THETA_NECK - THETA_TOP) * (HEAD_RINGS - 1)
    fj = (np.asarray(phi) + np.pi) / (2 * np.pi) * HEAD_COLS
    i = np.clip(np.floor(fi).astype(int), 0, HEAD_RINGS - 2)
    j = np.floor(fj).astype(int) % HEAD_COLS
    di, dj = fi - i, fj - np.floor(fj)
    lower = di + dj <= 1.0
    faces = np.where(lower, topo.grid["face_of_cell"][i, j, 0], topo.grid["face_of_cell"][i, j, 1])
    bary = np.where(lower[:, None], np.stack([1 - di - dj, di, dj], 1), np.stack([1 - di, 1 - dj, di + dj - 1], 1))
    # Corner order of the two grid triangles: (ij, i+1 j, i j+1) and (i j+1, i+1 j, i+1 j+1);
    # orient_outward may have swapped the last two corners of a triangle: follow it.
    expected = _grid_corners(i, j, lower)
    actual = topo.f[faces]
    swapped = ~np.all(actual == expected, axis=1)
    bary[swapped] = bary[swapped][:, [0, 2, 1]]
    return faces.astype(np.int64), bary


def _grid_corners(i: np.ndarray, j: np.ndarray, lower: np.ndarray) -> np.ndarray:
    def vid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return 1 + a * HEAD_COLS + (b % HEAD_COLS)

    t1 = np.stack([vid(i, j), vid(i + 1, j), vid(i, j + 1)], 1)
    t2 = np.stack([vid(i, j + 1), vid(i + 1, j), vid(i + 1, j + 1)], 1)
    return np.where(lower[:, None], t1, t2)


def from_obj(path) -> Topology:
    """Real topology from DECA's `head_template.obj` (its positions re-centred to FLAME's frame)."""
    from decaenv.meshio import read_obj

    mesh = read_obj(path)
    v = mesh.v - (mesh.v.min(0) + mesh.v.max(0)) / 2
    return Topology(v=v, f=mesh.f, vt=mesh.vt, ft=mesh.ft, source=str(path))

"""DECA's UV layout: UV rasterization and the dense template (`texture_data_<S>.npy`) — build, validate, index.

One place for the dense-template format (deca-spec §6.1, §6.9), shared by the runtime (loads it), fetch (content
check), the doctor (data check) and the synthetic generator (writes it), so they never disagree about a file.

The format, as DECA's `upsample_mesh` reads it: `x_coords`/`y_coords` (L,) are texel centres of the whole S×S
grid (floats, L = S² in FLAME's generator), `valid_pixel_ids` (N,) index that grid, `valid_pixel_3d_faces` and
`valid_pixel_b_coords` (N, 3) are per valid texel, `f` (M, 3) indexes the N dense vertices. Texel k is read at
row `int(y_coords[valid_pixel_ids[k]])`, column `int(x_coords[valid_pixel_ids[k]])`. No grid ordering is assumed.
numpy only (no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Optional, Tuple, TypedDict

import numpy as np

from decaenv.errors import DataError

DENSE_KEYS = (
    "img_size",
    "f",
    "x_coords",
    "y_coords",
    "valid_pixel_ids",
    "valid_pixel_3d_faces",
    "valid_pixel_b_coords",
)
DENSE_HINT = "use DECA's data/texture_data_256.npy (decaenv fetch texture-data)"


class DenseTemplate(TypedDict):
    """DECA's dense-template dict (a plain dict at run time, written to and read from `texture_data_<S>.npy`)."""

    f: np.ndarray  # (M, 3) int: triangles over the N dense vertices
    x_coords: np.ndarray  # (L,) float: texel-centre columns of the whole grid
    y_coords: np.ndarray  # (L,) float: texel-centre rows of the whole grid
    valid_pixel_ids: np.ndarray  # (N,) int: grid ids of the valid texels
    valid_pixel_3d_faces: np.ndarray  # (N, 3) int: mesh vertex ids of the triangle under each valid texel
    valid_pixel_b_coords: np.ndarray  # (N, 3) float: barycentric weights in that triangle
    img_size: int  # S, the UV map size


#: Builds the one-line error for a malformed template from what is wrong with it.
BadTemplate = Callable[[str], DataError]


def rasterize_uv(vt: np.ndarray, ft: np.ndarray, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Which UV triangle covers each texel centre, and where (texel (row i, col j) samples u = (2j+1)/2S,
    v = 1 - (2i+1)/2S, deca-spec §6.5).

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


def build_dense_template(face: np.ndarray, bary: np.ndarray, mesh_faces: np.ndarray) -> DenseTemplate:
    """A dense template in the real layout, as FLAME's texture generator builds it.

    The grid is column-major (grid id p = col·S + row; `x_coords[p] = p // S + 0.5`, `y_coords[p] = p % S + 0.5`);
    `valid_pixel_ids` are the covered grid ids in ascending order; `f` splits every grid quad whose corners are
    all valid into two triangles (DECA's `generate_triangles` winding), re-indexed to the valid texels.

    Args:
        face: (S, S) covering UV-triangle index per texel, -1 where uncovered. bary: (S, S, 3) weights.
        mesh_faces: (F, 3) mesh vertex ids per triangle (FLAME's faces for DECA).
    Returns:
        DECA's dict: img_size int; x_coords, y_coords (S²,) float64; valid_pixel_ids (N,) int64;
        valid_pixel_3d_faces (N, 3) int64; valid_pixel_b_coords (N, 3) float64; f (M, 3) int64.
    """
    size = face.shape[0]
    grid = np.arange(size * size)
    ids = np.flatnonzero((face >= 0).T.ravel())  # column-major grid ids of covered texels, ascending
    rows, cols = ids % size, ids // size
    index = np.full(size * size, -1, np.int64)
    index[ids] = np.arange(len(ids))
    # quad with top-left texel (r, c): p = c·S + r; p+1 is the row below, p+S the column to the right.
    r, c = np.meshgrid(np.arange(size - 1), np.arange(size - 1), indexing="ij")
    p = (c * size + r).ravel()
    tris = []
    for corners in ((p, p + 1, p + size), (p + size, p + 1, p + size + 1)):
        idx = np.stack([index[c] for c in corners], 1)
        tris.append(idx[(idx >= 0).all(1)])
    return DenseTemplate(
        img_size=size,
        f=np.concatenate(tris).astype(np.int64),
        x_coords=(grid // size + 0.5).astype(np.float64),
        y_coords=(grid % size + 0.5).astype(np.float64),
        valid_pixel_ids=ids.astype(np.int64),
        valid_pixel_3d_faces=np.asarray(mesh_faces)[face[rows, cols]].astype(np.int64),
        valid_pixel_b_coords=bary[rows, cols].astype(np.float64),
    )


def validate_dense_template(
    template: object, name: str = "texture_data_256.npy", n_vertices: Optional[int] = None, size: Optional[int] = None
) -> DenseTemplate:
    """Check that DECA's code can use a dense template (the one validator for runtime, fetch and doctor).

    Accepts exactly what DECA's `upsample_mesh` can index: equal `x_coords`/`y_coords` lengths, integer
    `valid_pixel_ids` inside them, per-texel arrays of one length N, `f` inside N, finite barycentrics, texel
    coordinates inside the S×S maps; `valid_pixel_3d_faces` inside `n_vertices` when given.

    Args:
        template: the loaded object. name: how to name the file in errors. n_vertices: the mesh's vertex count.
        size: the UV map size the runtime uses (defaults to the file's `img_size`).
    Returns:
        the dict with numpy arrays (img_size as int).
    Raises:
        DataError: one line saying what is wrong.
    """

    def bad(text: str) -> DataError:
        return DataError(f"dense template {name} {text}", hint=DENSE_HINT, path=Path(name))

    if not isinstance(template, Mapping):
        raise bad(f"holds a {type(template).__name__}, not DECA's dictionary")
    missing = [k for k in DENSE_KEYS if k not in template]
    if missing:
        raise bad(f"lacks {', '.join(missing)}")
    arrays = {k: _array(template[k], k, bad) for k in DENSE_KEYS if k != "img_size"}
    try:
        img_size = int(template["img_size"])
    except (TypeError, ValueError):
        raise bad(f"has img_size {template['img_size']!r}, not an integer") from None
    out = DenseTemplate(
        f=arrays["f"],
        x_coords=arrays["x_coords"],
        y_coords=arrays["y_coords"],
        valid_pixel_ids=arrays["valid_pixel_ids"],
        valid_pixel_3d_faces=arrays["valid_pixel_3d_faces"],
        valid_pixel_b_coords=arrays["valid_pixel_b_coords"],
        img_size=img_size,
    )
    _check_shapes(out, bad)
    _check_indices(out, bad, n_vertices, size or out["img_size"])
    return out


INDEX_KEYS = ("f", "valid_pixel_ids", "valid_pixel_3d_faces")


def _array(value: object, key: str, bad: BadTemplate) -> np.ndarray:
    """`value` as a numeric array; index arrays must be integer arrays (numpy refuses float indices)."""
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - any conversion failure means a malformed file
        raise bad(f"has a {key} that is not an array") from None
    if arr.dtype.kind not in "iuf":
        raise bad(f"has {key} of dtype {arr.dtype}, expected numbers")
    if key in INDEX_KEYS and arr.dtype.kind == "f":
        raise bad(f"has {key} of dtype {arr.dtype}: indices must be integers")
    return arr


def _check_shapes(t: DenseTemplate, bad: BadTemplate) -> None:
    xs, ys, ids = t["x_coords"], t["y_coords"], t["valid_pixel_ids"]
    if xs.ndim != 1 or ys.ndim != 1 or len(xs) != len(ys):
        raise bad(f"has x_coords {xs.shape} and y_coords {ys.shape}: expected two grids of one length")
    if ids.ndim != 1:
        raise bad(f"has valid_pixel_ids of shape {ids.shape}, expected (N,)")
    n = len(ids)
    for key, arr in (
        ("valid_pixel_3d_faces", t["valid_pixel_3d_faces"]),
        ("valid_pixel_b_coords", t["valid_pixel_b_coords"]),
    ):
        if arr.shape != (n, 3):
            raise bad(f"has {key} of shape {arr.shape}, expected ({n}, 3) (one row per valid texel)")
    if t["f"].ndim != 2 or t["f"].shape[1:] != (3,):
        raise bad(f"has f of shape {t['f'].shape}, expected (M, 3)")
    if not np.all(np.isfinite(t["valid_pixel_b_coords"])):
        raise bad("has non-finite barycentric coordinates (valid_pixel_b_coords)")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise bad("has non-finite texel coordinates (x_coords/y_coords)")


def _check_indices(t: DenseTemplate, bad: BadTemplate, n_vertices: Optional[int], size: int) -> None:
    ids, n = t["valid_pixel_ids"], len(t["valid_pixel_ids"])
    grid = len(t["x_coords"])
    if n and (ids.min() < 0 or ids.max() >= grid):
        raise bad(
            f"has valid_pixel_ids up to {int(ids.max())} but x_coords/y_coords hold {grid} texels "
            "(a layout DECA's upsample_mesh cannot index)"
        )
    if len(t["f"]) and (t["f"].min() < 0 or t["f"].max() >= n):
        raise bad(f"has faces (f) indexing vertex {int(t['f'].max())} of {n} dense vertices")
    faces3d = t["valid_pixel_3d_faces"]
    if n_vertices is not None and n and (faces3d.min() < 0 or faces3d.max() >= n_vertices):
        raise bad(f"has valid_pixel_3d_faces up to vertex {int(faces3d.max())}, but the mesh has {n_vertices}")
    rows, cols = texel_rows_cols(t)
    if n and (min(rows.min(), cols.min()) < 0 or max(rows.max(), cols.max()) >= size):
        raise bad(f"has texel coordinates outside the {size}×{size} UV maps")


def texel_rows_cols(template: Mapping) -> Tuple[np.ndarray, np.ndarray]:
    """(rows, cols) (N,) int64 of each valid texel, read exactly as DECA does:
    `int(y_coords[valid_pixel_ids[k]])`, `int(x_coords[valid_pixel_ids[k]])` (truncation toward zero)."""
    ids = np.asarray(template["valid_pixel_ids"]).astype(np.int64)
    rows = np.trunc(np.asarray(template["y_coords"])[ids]).astype(np.int64)
    cols = np.trunc(np.asarray(template["x_coords"])[ids]).astype(np.int64)
    return rows, cols

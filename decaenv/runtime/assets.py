"""DECA's topology and UV-space data files, loaded and validated once (deca-spec §6.1).

`texture_data_256.npy` (the dense template of the detail mesh) is optional: when it is absent the template
is derived from `head_template.obj`'s UV layout (every texel whose centre lies in a UV triangle; the same
key layout), and a warning says so — the vertex count then differs from DECA's 59,315.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from decaenv.errors import DataError

if TYPE_CHECKING:
    from decaenv.uvlayout import DenseTemplate

log = logging.getLogger("decaenv")


@dataclass(frozen=True)
class Topology:
    """`head_template.obj`'s faces and UVs (its positions are not FLAME's and are ignored).

    Attributes:
        faces: (F, 3) int64. uvcoords: (T, 2) float32 raw UVs in [0, 1]. uvfaces: (F, 3) int64.
    """

    faces: np.ndarray
    uvcoords: np.ndarray
    uvfaces: np.ndarray


@dataclass(frozen=True)
class UvAssets:
    """UV-space data.

    Attributes:
        face_eye_mask: (S, S) float32 soft mask. fixed_displacement: (S, S) float32.
        dense_template: DECA's dense-template dict. dense_source: "file" or "derived from <obj>".
    """

    face_eye_mask: np.ndarray
    fixed_displacement: np.ndarray
    dense_template: DenseTemplate
    dense_source: str


def load_topology(path: os.PathLike, n_vertices: Optional[int] = None) -> Topology:
    """Read `head_template.obj` (faces and UVs) and check it against FLAME's vertex count.

    Raises:
        DataError: missing, unreadable, without UVs, or not FLAME's topology.
    """
    from decaenv.meshio import read_obj

    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"head template {path} does not exist",
            hint="run `decaenv fetch` (DECA's public data files) or pass --data-dir",
            path=path,
        )
    mesh = read_obj(path)
    if len(mesh.ft) != len(mesh.f):
        raise DataError(f"head template {path} has no UV faces", hint="use DECA's data/head_template.obj", path=path)
    if n_vertices is not None and int(mesh.f.max()) + 1 > n_vertices:
        raise DataError(
            f"head template {path} indexes {int(mesh.f.max()) + 1} vertices but FLAME has {n_vertices}",
            hint="use DECA's head_template.obj with FLAME 2020",
            path=path,
        )
    return Topology(faces=mesh.f, uvcoords=mesh.vt.astype(np.float32), uvfaces=mesh.ft)


def validate_dense_template(
    template: object, path: Path, n_vertices: Optional[int] = None, size: Optional[int] = None
) -> DenseTemplate:
    """DECA's dense-template dict checked by `decaenv.uvlayout`'s validator (the one fetch and the doctor use).

    Raises:
        DataError: the file is not one DECA's `upsample_mesh` can use (one-line reason).
    """
    from decaenv.uvlayout import validate_dense_template as validate

    return validate(template, str(path), n_vertices=n_vertices, size=size)


def derive_dense_template(topology: Topology, size: int) -> DenseTemplate:
    """A dense template from the UV layout: texels whose centre lies in a UV triangle (deca-spec §6.5)."""
    from decaenv.uvlayout import build_dense_template, rasterize_uv

    face, bary = rasterize_uv(topology.uvcoords.astype(np.float64), topology.uvfaces, size)
    return build_dense_template(face, bary, topology.faces)


def load_dense_template(path: Path, topology: Topology, size: int, topology_path: Path) -> Tuple[DenseTemplate, str]:
    """The dense template from `path`, or derived from the topology when the file is absent."""
    from decaenv.loaders.safe_pickle import load_object_npy

    if path.is_file():
        n_vertices = int(topology.faces.max()) + 1 if len(topology.faces) else None
        return validate_dense_template(load_object_npy(path, "dense template"), path, n_vertices, size), "file"
    log.warning(
        "%s is absent: deriving the detail-mesh template from %s's UV layout (the dense mesh will not "
        "have DECA's 59,315 vertices)",
        path.name,
        topology_path.name,
    )
    return derive_dense_template(topology, size), f"derived from {topology_path.name}"


def load_uv_assets(
    face_eye_mask_path: os.PathLike,
    fixed_displacement_path: os.PathLike,
    dense_template_path: os.PathLike,
    topology: Topology,
    topology_path: os.PathLike,
    uv_size: int = 256,
) -> UvAssets:
    """Load the UV mask, the fixed displacement and the dense template.

    Raises:
        DataError: a file is missing, unreadable or of the wrong size.
    """
    from decaenv.runtime.model_files import load_mask_png, load_numeric_npy

    mask = load_mask_png(face_eye_mask_path, "UV face/eye mask")
    if mask.shape != (uv_size, uv_size):
        mask = _resize_nearest(mask, uv_size)
    fixed = load_numeric_npy(fixed_displacement_path, "fixed displacement").astype(np.float32)
    if fixed.shape != (uv_size, uv_size):
        raise DataError(
            f"fixed displacement {fixed_displacement_path} has shape {fixed.shape}, expected ({uv_size}, {uv_size})",
            hint="use DECA's data/fixed_displacement_256.npy",
            path=Path(fixed_displacement_path),
        )
    dense, source = load_dense_template(Path(dense_template_path), topology, uv_size, Path(topology_path))
    return UvAssets(face_eye_mask=mask, fixed_displacement=fixed, dense_template=dense, dense_source=source)


def _resize_nearest(mask: np.ndarray, size: int) -> np.ndarray:
    """torch's default nearest resize (index floor(i·in/out)), as DECA's `F.interpolate` of the mask."""
    rows = np.floor(np.arange(size) * mask.shape[0] / size).astype(int)
    cols = np.floor(np.arange(size) * mask.shape[1] / size).astype(int)
    return mask[rows][:, cols]

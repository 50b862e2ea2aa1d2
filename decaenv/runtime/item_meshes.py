"""One item's meshes from a reconstructed batch: DECA's coarse mesh (with its texture and normal map) and the dense
detail mesh. Below both `export` (DECA's `--save` kinds) and `mesh_kinds` (the extra mesh formats)."""

from __future__ import annotations

from typing import Mapping, Tuple, TypedDict

import numpy as np
import torch

from decaenv.runtime.mesh import upsample_mesh
from decaenv.runtime.vis import tensor2image


class CoarseMesh(TypedDict):
    """DECA's coarse mesh of one item, with its UV maps (the keyword arguments of `writers.obj_files`)."""

    vertices: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int64
    uvcoords: np.ndarray  # (T, 2) float32 raw UVs in [0, 1]
    uvfaces: np.ndarray  # (F, 3) int64
    texture: np.ndarray  # (S, S, 3) uint8 RGB
    normal_map: np.ndarray  # (S, S, 3) uint8 RGB


class ItemMeshes(TypedDict):
    """Both meshes of one item: `detail` is (dense vertices (N, 3), colours (N, 3) uint8, faces (M, 3) int64)."""

    coarse: CoarseMesh
    detail: Tuple[np.ndarray, np.ndarray, np.ndarray]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def item_meshes(deca, opdict: Mapping[str, torch.Tensor], index: int) -> ItemMeshes:
    """The coarse mesh (with its texture and normal map) and the dense detail mesh of one item."""
    vertices = _np(opdict["verts"][index])
    texture = tensor2image(opdict["uv_texture_gt"][index])
    normal_map = tensor2image(opdict["uv_detail_normals"][index] * 0.5 + 0.5)
    render = deca.render
    coarse = CoarseMesh(
        vertices=vertices,
        faces=render.faces[0].cpu().numpy(),
        uvcoords=render.raw_uvcoords[0].cpu().numpy(),
        uvfaces=render.uvfaces[0].cpu().numpy(),
        texture=texture,
        normal_map=normal_map,
    )
    dense = upsample_mesh(
        vertices,
        _np(opdict["normals"][index]),
        _np(opdict["displacement_map"][index]).squeeze(),
        texture,
        deca.dense_template,
    )
    return ItemMeshes(coarse=coarse, detail=dense)

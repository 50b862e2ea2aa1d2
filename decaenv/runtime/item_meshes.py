"""One item's meshes from a reconstructed batch: DECA's coarse mesh (with its texture and normal map) and the dense
detail mesh. Below both `export` (DECA's `--save` kinds) and `mesh_kinds` (the extra mesh formats)."""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np
import torch

from decaenv.runtime.mesh import upsample_mesh
from decaenv.runtime.vis import tensor2image


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def item_meshes(deca, opdict: Mapping[str, torch.Tensor], index: int) -> Dict[str, object]:
    """The coarse mesh (with its texture and normal map) and the dense detail mesh of one item."""
    vertices = _np(opdict["verts"][index])
    texture = tensor2image(opdict["uv_texture_gt"][index])
    normal_map = tensor2image(opdict["uv_detail_normals"][index] * 0.5 + 0.5)
    render = deca.render
    coarse = {"vertices": vertices, "faces": render.faces[0].cpu().numpy(), "uvcoords": render.raw_uvcoords[0].cpu().numpy(),
              "uvfaces": render.uvfaces[0].cpu().numpy(), "texture": texture, "normal_map": normal_map}
    dense = upsample_mesh(vertices, _np(opdict["normals"][index]), _np(opdict["displacement_map"][index]).squeeze(),
                          texture, deca.dense_template)
    return {"coarse": coarse, "detail": dense}

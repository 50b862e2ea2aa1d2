"""FLAME as an `nn.Module` holding buffers only; the math is in `decaenv.runtime.lbs` (deca-spec §4).

Built from `decaenv.loaders.flame.load_flame` (no chumpy) and the landmark embedding read through the
allowlisted unpickler (`load_object_npy`).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch
from torch import nn

from decaenv.errors import DataError
from decaenv.runtime import lbs
from decaenv.runtime.outputs import FlameOutput

EMBEDDING_KEYS = (
    "static_lmk_faces_idx",
    "static_lmk_bary_coords",
    "dynamic_lmk_faces_idx",
    "dynamic_lmk_bary_coords",
    "full_lmk_faces_idx",
    "full_lmk_bary_coords",
)


def _np(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def load_landmark_embedding(path: os.PathLike) -> Dict[str, np.ndarray]:
    """Read DECA's `landmark_embedding.npy` (pickled dict; dynamic entries are torch tensors).

    Returns:
        the six arrays of deca-spec §4.3 as numpy.
    Raises:
        DataError / UnsafeContentError: unreadable, refused, or keys/shapes wrong.
    """
    from decaenv.loaders.safe_pickle import load_object_npy

    data = load_object_npy(path, "landmark embedding")
    if not isinstance(data, Mapping) or any(k not in data for k in EMBEDDING_KEYS):
        have = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise DataError(
            f"landmark embedding {path} is not DECA's (needs {', '.join(EMBEDDING_KEYS)}; has {have})",
            hint="use DECA's data/landmark_embedding.npy",
            path=path,
        )
    out = {k: _np(data[k]) for k in EMBEDDING_KEYS}
    checks = {"static_lmk_faces_idx": (51,), "dynamic_lmk_faces_idx": (79, 17), "full_lmk_faces_idx": (1, 68)}
    for key, shape in checks.items():
        if out[key].shape != shape:
            raise DataError(
                f"landmark embedding {path}: {key} has shape {out[key].shape}, expected {shape}",
                hint="use DECA's data/landmark_embedding.npy",
                path=path,
            )
    return out


class FLAME(nn.Module):
    """FLAME 2020 with DECA's choices: 100 shape + 50 expression components, 6 pose values (global + jaw),
    zero neck and eye poses, 17 dynamic contour + 51 static landmarks, 68 full landmarks.

    Args:
        model: a `decaenv.loaders.flame.FlameModel`. embedding: `load_landmark_embedding(...)`.
        n_shape, n_exp: components used (DECA: 100, 50).
    """

    SHAPE_SPACE_DIM = 300
    EXPRESSION_SPACE_DIM = 100
    NUM_JOINTS = 5
    NECK_IDX = 1

    # Buffers registered in __init__ (declared here for type checkers).
    faces_tensor: torch.Tensor
    v_template: torch.Tensor
    shapedirs: torch.Tensor
    posedirs: torch.Tensor
    J_regressor: torch.Tensor
    parents: torch.Tensor
    lbs_weights: torch.Tensor
    neck_pose: torch.Tensor
    eye_pose: torch.Tensor
    lmk_faces_idx: torch.Tensor
    lmk_bary_coords: torch.Tensor
    dynamic_lmk_faces_idx: torch.Tensor
    dynamic_lmk_bary_coords: torch.Tensor
    full_lmk_faces_idx: torch.Tensor
    full_lmk_bary_coords: torch.Tensor

    def __init__(self, model, embedding: Mapping[str, np.ndarray], n_shape: int = 100, n_exp: int = 50):
        super().__init__()

        def f32(a: object) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float32))

        def i64(a: object) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.int64))

        if model.n_components < self.SHAPE_SPACE_DIM + n_exp:
            raise DataError(
                f"FLAME model {model.source} has {model.n_components} components; DECA needs "
                f"{self.SHAPE_SPACE_DIM + n_exp}",
                hint="use FLAME 2020's generic_model.pkl",
                path=model.source,
            )
        self.n_shape, self.n_exp = n_shape, n_exp
        shapedirs = np.concatenate(
            [
                model.shapedirs[:, :, :n_shape],
                model.shapedirs[:, :, self.SHAPE_SPACE_DIM : self.SHAPE_SPACE_DIM + n_exp],
            ],
            2,
        )
        n_vertices = model.v_template.shape[0]
        posedirs = np.asarray(model.posedirs, dtype=np.float32).reshape(-1, model.posedirs.shape[-1]).T
        parents = np.asarray(model.kintree_table[0], dtype=np.float64).astype(np.int64)
        parents[0] = -1
        self.register_buffer("faces_tensor", i64(model.f), persistent=False)
        self.register_buffer("v_template", f32(model.v_template), persistent=False)
        self.register_buffer("shapedirs", f32(shapedirs), persistent=False)
        self.register_buffer("posedirs", f32(posedirs), persistent=False)  # (36, 3V)
        self.register_buffer("J_regressor", f32(model.J_regressor), persistent=False)
        self.register_buffer("parents", i64(parents), persistent=False)
        self.register_buffer("lbs_weights", f32(model.weights), persistent=False)
        self.register_buffer("neck_pose", torch.zeros(1, 3), persistent=False)
        self.register_buffer("eye_pose", torch.zeros(1, 6), persistent=False)
        self.register_buffer("lmk_faces_idx", i64(embedding["static_lmk_faces_idx"]), persistent=False)
        self.register_buffer("lmk_bary_coords", f32(embedding["static_lmk_bary_coords"]), persistent=False)
        self.register_buffer("dynamic_lmk_faces_idx", i64(embedding["dynamic_lmk_faces_idx"]), persistent=False)
        self.register_buffer("dynamic_lmk_bary_coords", f32(embedding["dynamic_lmk_bary_coords"]), persistent=False)
        self.register_buffer("full_lmk_faces_idx", i64(embedding["full_lmk_faces_idx"]), persistent=False)
        self.register_buffer("full_lmk_bary_coords", f32(embedding["full_lmk_bary_coords"]), persistent=False)
        if int(self.faces_tensor.max()) >= n_vertices:
            raise DataError(f"FLAME model {model.source}: faces index past the vertices", path=model.source)
        self.neck_kin_chain = self._kin_chain(parents, self.NECK_IDX)

    @staticmethod
    def _kin_chain(parents: np.ndarray, start: int):
        chain, idx = [], start
        while idx != -1:
            chain.append(int(idx))
            idx = int(parents[idx])
        return tuple(chain)

    def full_pose(self, pose_params: torch.Tensor, eye_pose_params: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[global(3), neck(3) = 0, jaw(3), eyes(6)] → (B, 15). pose_params: (B, 6)."""
        batch = pose_params.shape[0]
        eyes = self.eye_pose.expand(batch, -1) if eye_pose_params is None else eye_pose_params
        return torch.cat([pose_params[:, :3], self.neck_pose.expand(batch, -1), pose_params[:, 3:6], eyes], 1)

    def forward(
        self,
        shape_params: torch.Tensor,
        expression_params: Optional[torch.Tensor] = None,
        pose_params: Optional[torch.Tensor] = None,
        eye_pose_params: Optional[torch.Tensor] = None,
    ) -> FlameOutput:
        """Posed vertices and landmarks.

        Args:
            shape_params: (B, n_shape). expression_params: (B, n_exp) or None (zeros).
            pose_params: (B, 6) [global axis-angle, jaw axis-angle] or None (zeros). eye_pose_params: (B, 6) or None.
        Returns:
            FlameOutput(vertices (B, V, 3), landmarks2d (B, 68, 3) dynamic contour + static, landmarks3d (B, 68, 3)).
        """
        batch = shape_params.shape[0]
        dtype, device = self.v_template.dtype, self.v_template.device
        if expression_params is None:
            expression_params = torch.zeros(batch, self.n_exp, dtype=dtype, device=device)
        if pose_params is None:
            pose_params = torch.zeros(batch, 6, dtype=dtype, device=device)
        betas = torch.cat([shape_params, expression_params], dim=1)
        full_pose = self.full_pose(pose_params, eye_pose_params)
        vertices, _ = lbs.lbs(
            betas,
            full_pose,
            self.v_template[None].expand(batch, -1, -1),
            self.shapedirs,
            self.posedirs,
            self.J_regressor,
            self.parents,
            self.lbs_weights,
        )
        rows = lbs.dynamic_contour_rows(full_pose, self.neck_kin_chain)
        faces_idx = torch.cat([self.dynamic_lmk_faces_idx[rows], self.lmk_faces_idx[None].expand(batch, -1)], 1)
        bary = torch.cat([self.dynamic_lmk_bary_coords[rows], self.lmk_bary_coords[None].expand(batch, -1, -1)], 1)
        landmarks2d = lbs.vertices2landmarks(vertices, self.faces_tensor, faces_idx, bary)
        landmarks3d = lbs.vertices2landmarks(
            vertices,
            self.faces_tensor,
            self.full_lmk_faces_idx.expand(batch, -1),
            self.full_lmk_bary_coords.expand(batch, -1, -1),
        )
        return FlameOutput(vertices=vertices, landmarks2d=landmarks2d, landmarks3d=landmarks3d)

    def seletec_3d68(self, vertices: torch.Tensor) -> torch.Tensor:
        """The 68 full landmarks of given vertices (DECA's misspelt helper name). vertices: (B, V, 3) → (B, 68, 3)."""
        batch = vertices.shape[0]
        return lbs.vertices2landmarks(
            vertices,
            self.faces_tensor,
            self.full_lmk_faces_idx.expand(batch, -1),
            self.full_lmk_bary_coords.expand(batch, -1, -1),
        )

"""FLAME's linear blend skinning and landmark functions as pure functions (deca-spec §4.2, §4.3).

Everything is float32 torch; shapes are given as (B batch, V vertices, J joints, K components, L landmarks).
"""

from __future__ import annotations

import math
from typing import Tuple

import torch

#: Added to each component of an axis-angle vector before its norm (DECA/smplx), so r = 0 gives R = I.
RODRIGUES_EPS = 1e-8


def batch_rodrigues(rot_vecs: torch.Tensor) -> torch.Tensor:
    """Axis-angle → rotation matrices: θ = ‖r + 1e-8‖, k = r/θ, R = I + sinθ·K + (1−cosθ)·K².

    Args:
        rot_vecs: (N, 3) axis-angle vectors (radians).
    Returns:
        (N, 3, 3) rotation matrices; exactly I for r = 0.
    """
    angle = torch.norm(rot_vecs + RODRIGUES_EPS, dim=1, keepdim=True)  # (N, 1)
    axis = rot_vecs / angle
    cos = torch.cos(angle)[:, :, None]
    sin = torch.sin(angle)[:, :, None]
    rx, ry, rz = axis.unbind(dim=1)
    zeros = torch.zeros_like(rx)
    skew = torch.stack([zeros, -rz, ry, rz, zeros, -rx, -ry, rx, zeros], dim=1).view(-1, 3, 3)
    ident = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device)[None]
    return ident + sin * skew + (1 - cos) * torch.bmm(skew, skew)


def blend_shapes(betas: torch.Tensor, shape_disps: torch.Tensor) -> torch.Tensor:
    """Σ_k betas_k · shape_disps[..., k].

    Args:
        betas: (B, K). shape_disps: (V, 3, K).
    Returns:
        (B, V, 3) offsets.
    """
    return torch.einsum("bl,mkl->bmk", betas, shape_disps)


def vertices2joints(j_regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """Joint locations. j_regressor: (J, V); vertices: (B, V, 3) → (B, J, 3)."""
    return torch.einsum("bik,ji->bjk", vertices, j_regressor)


def rigid_transforms(rot_mats: torch.Tensor, joints: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
    """Per-joint skinning transforms A_j (rest pose removed): A_j(x) = G_j (x − J_j) + G_j(J_j).

    Built recursively as A_j = A_parent ∘ [R_j | J_j − R_j J_j] (a rotation about the rest joint), which is
    the same transform as DECA's `G_j − [0 | G_j·[J_j; 0]]` but exactly the identity for zero pose.

    Args:
        rot_mats: (B, J, 3, 3) local rotations. joints: (B, J, 3) rest joints. parents: (J,) int64, root −1.
    Returns:
        (B, J, 3, 4) [rotation | translation] per joint.
    """
    local_t = joints - torch.einsum("bjik,bjk->bji", rot_mats, joints)  # J − R J
    rotations = [rot_mats[:, 0]]
    translations = [local_t[:, 0]]
    for j in range(1, parents.shape[0]):
        p = int(parents[j])
        rotations.append(torch.bmm(rotations[p], rot_mats[:, j]))
        translations.append(torch.einsum("bik,bk->bi", rotations[p], local_t[:, j]) + translations[p])
    return torch.cat([torch.stack(rotations, 1), torch.stack(translations, 1)[..., None]], dim=-1)


def lbs(
    betas: torch.Tensor,
    pose: torch.Tensor,
    v_template: torch.Tensor,
    shapedirs: torch.Tensor,
    posedirs: torch.Tensor,
    j_regressor: torch.Tensor,
    parents: torch.Tensor,
    lbs_weights: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Shape blend shapes → joints → pose correctives → linear blend skinning.

    Args:
        betas: (B, K) shape then expression coefficients. pose: (B, 3·J) axis-angle per joint.
        v_template: (B, V, 3) or (V, 3). shapedirs: (V, 3, K). posedirs: (9·(J−1), 3·V).
        j_regressor: (J, V). parents: (J,) int64. lbs_weights: (V, J).
    Returns:
        vertices (B, V, 3) and rest joints (B, J, 3).
    """
    batch = betas.shape[0]
    v_shaped = v_template + blend_shapes(betas, shapedirs)
    joints = vertices2joints(j_regressor, v_shaped)
    rot_mats = batch_rodrigues(pose.reshape(-1, 3)).view(batch, -1, 3, 3)
    ident = torch.eye(3, dtype=pose.dtype, device=pose.device)
    pose_feature = (rot_mats[:, 1:] - ident).reshape(batch, -1)
    v_posed = v_shaped + torch.matmul(pose_feature, posedirs).view(batch, -1, 3)
    transforms = rigid_transforms(rot_mats, joints, parents)  # (B, J, 3, 4)
    # Skinning written as v + Σ_j w_j ((R_j − I) v + t_j): identical to Σ_j w_j (R_j v + t_j) for weights
    # that sum to 1, and exactly v for the identity pose.
    delta = transforms.clone()
    delta[..., :3] -= ident
    blended = torch.einsum("vj,bjik->bvik", lbs_weights, delta)  # (B, V, 3, 4)
    vertices = v_posed + torch.einsum("bvik,bvk->bvi", blended[..., :3], v_posed) + blended[..., 3]
    return vertices, joints


def vertices2landmarks(
    vertices: torch.Tensor, faces: torch.Tensor, lmk_faces_idx: torch.Tensor, lmk_bary_coords: torch.Tensor
) -> torch.Tensor:
    """Barycentric landmarks: Σ_i bary[l, i] · vertices[faces[face_idx[l], i]].

    Args:
        vertices: (B, V, 3). faces: (F, 3) int64. lmk_faces_idx: (B, L) int64. lmk_bary_coords: (B, L, 3).
    Returns:
        (B, L, 3).
    """
    batch = vertices.shape[0]
    corners = faces[lmk_faces_idx.reshape(-1)].view(batch, -1, 3)  # (B, L, 3) vertex ids
    gathered = torch.gather(vertices, 1, corners.reshape(batch, -1, 1).expand(-1, -1, vertices.shape[-1]))
    gathered = gathered.view(batch, -1, 3, vertices.shape[-1])
    return torch.einsum("blfi,blf->bli", gathered, lmk_bary_coords.to(vertices.dtype))


def rot_mat_to_euler_y(rot_mats: torch.Tensor) -> torch.Tensor:
    """The yaw angle (radians) DECA uses: atan2(−R[2,0], sqrt(R[0,0]² + R[1,0]²)). rot_mats: (B, 3, 3) → (B,)."""
    sy = torch.sqrt(rot_mats[:, 0, 0] ** 2 + rot_mats[:, 1, 0] ** 2)
    return torch.atan2(-rot_mats[:, 2, 0], sy)


def dynamic_contour_rows(full_pose: torch.Tensor, neck_kin_chain: Tuple[int, ...] = (1, 0)) -> torch.Tensor:
    """Row of the dynamic contour table for each head pose (DECA's class-method variant: no negation).

    R_rel = R[chain[-1]] ··· R[chain[0]] (neck then root); yaw = degrees of `rot_mat_to_euler_y(R_rel)`;
    a = round(min(yaw, 39)) (half to even); row = a if a ≥ 0, 39 − a if −39 ≤ a < 0, else 78.

    Args:
        full_pose: (B, 3·J) axis-angle. neck_kin_chain: joint ids from the neck up to the root.
    Returns:
        (B,) int64 rows in [0, 78].
    """
    batch = full_pose.shape[0]
    aa = full_pose.view(batch, -1, 3)[:, list(neck_kin_chain)]
    rots = batch_rodrigues(aa.reshape(-1, 3)).view(batch, -1, 3, 3)
    rel = torch.eye(3, dtype=full_pose.dtype, device=full_pose.device)[None].expand(batch, -1, -1)
    for i in range(len(neck_kin_chain)):
        rel = torch.bmm(rots[:, i], rel)
    yaw = torch.round(torch.clamp(rot_mat_to_euler_y(rel) * 180.0 / math.pi, max=39)).to(torch.long)
    negative = torch.where(yaw < -39, torch.full_like(yaw, 78), 39 - yaw)
    return torch.where(yaw < 0, negative, yaw)

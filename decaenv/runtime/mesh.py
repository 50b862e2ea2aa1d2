"""Mesh helpers: per-face gathers, DECA's area-weighted vertex normals, the UV-grid triangulation and the
dense detail mesh (deca-spec §6.1, §6.3, §6.9)."""

from __future__ import annotations

from typing import Dict, Mapping, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from decaenv.uvlayout import texel_rows_cols

#: Margins of DECA's UV-grid triangulation (`generate_triangles(256, 256, margin_x=2, margin_y=5)`).
DENSE_MARGIN_X, DENSE_MARGIN_Y = 2, 5


def face_vertices(attributes: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Gather per-vertex attributes per face corner.

    Args:
        attributes: (B, V, D). faces: (F, 3) or (B, F, 3) int64.
    Returns:
        (B, F, 3, D).
    """
    batch, _, dim = attributes.shape
    if faces.dim() == 2:  # one index_select: several times faster on CPU than `attributes[:, faces]`
        return attributes.index_select(1, faces.reshape(-1)).view(batch, *faces.shape, dim)
    idx = faces.reshape(batch, -1, 1).expand(-1, -1, dim)
    return torch.gather(attributes, 1, idx).view(batch, faces.shape[1], 3, dim)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """DECA's vertex normals: each corner gets the cross product of its two edges (area-weighted face
    normal), summed per vertex, then `F.normalize(eps=1e-6)`.

    Gathers and sums run on a (V, B, 3) copy along its first dimension: `index_add_` there adds whole rows
    instead of slicing every index along dimension 1 (9× faster on CPU), in the same order, so the result is
    bit-identical; the whole function is ~2× faster for the dense detail mesh and the coarse one. Where the
    compiled extension is loaded, its `vertex_normals` kernel computes the same numbers (~2-3× faster again
    for the dense mesh), used only after a check in the process found it bit-identical to this path.

    Args:
        vertices: (B, V, 3). faces: (F, 3) int64 (shared by the batch).
    Returns:
        (B, V, 3) unit normals (zero for unreferenced vertices), contiguous.
    """
    kernel = _compiled_normals(vertices, faces)
    if kernel is not None:  # the same numbers in one pass (csrc/vertex_normals.h)
        return kernel(vertices.contiguous(), faces.contiguous())
    return _torch_normals(vertices, faces)


def _torch_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    return F.normalize(_normal_sums(vertices, faces), eps=1e-6, dim=2).transpose(0, 1).contiguous()


def _normal_sums(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """The (V, B, 3) sums of `vertex_normals` in torch."""
    batch, n_vertices = vertices.shape[:2]
    rows = vertices.transpose(0, 1).contiguous()  # (V, B, 3): each corner gather copies whole rows
    corners = rows.index_select(0, faces.reshape(-1)).view(faces.shape[0], 3, batch, 3)
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]  # (F, B, 3) each
    # One index_add over the concatenation adds in the same order as DECA's three calls (corner 1, 2, 0).
    index = torch.cat([faces[:, 1], faces[:, 2], faces[:, 0]])
    crosses = torch.cat(
        [
            torch.linalg.cross(c - b, a - b, dim=-1),
            torch.linalg.cross(a - c, b - c, dim=-1),
            torch.linalg.cross(b - a, c - a, dim=-1),
        ],
        dim=0,
    )
    return vertices.new_zeros(n_vertices, batch, 3).index_add_(0, index, crosses)


#: Whether the extension's `vertex_normals` gives the torch path's numbers here, checked once per process (it
#: rounds as torch's x86 CPU kernels do, which another platform's torch may not).
_KERNEL_AGREES: Dict[str, bool] = {}


def _compiled_normals(vertices: torch.Tensor, faces: torch.Tensor):
    """The extension's vertex-normal kernel when a build is loaded, it applies (float32 CPU tensors, no
    gradient wanted) and it agrees with the torch path bit for bit on this machine; else None."""
    if vertices.device.type != "cpu" or vertices.dtype != torch.float32 or faces.dtype != torch.int64:
        return None
    if vertices.dim() != 3 or faces.dim() != 2 or (torch.is_grad_enabled() and vertices.requires_grad):
        return None
    from decaenv.runtime.rasterizer import extension

    return extension.checked_op("vertex_normals", _KERNEL_AGREES, "agrees", _agrees)


def _agrees(op) -> bool:
    """The kernel's normals equal the torch path's on a random mesh (shared, repeated and unused vertices,
    degenerate faces)."""
    generator = torch.Generator().manual_seed(0)
    vertices = torch.randn(3, 64, 3, generator=generator) * 10
    faces = torch.randint(0, 60, (400, 3), generator=generator)
    with torch.no_grad():
        return bool(torch.equal(op(vertices, faces), _torch_normals(vertices, faces)))


def generate_triangles(h: int, w: int, margin_x: int = DENSE_MARGIN_X, margin_y: int = DENSE_MARGIN_Y) -> np.ndarray:
    """Two triangles per pixel quad of an h×w grid (vertex id = y·w + x), DECA's order: x outer, y inner,
    (p, p+w, p+1) and (p+1, p+w, p+w+1) — i.e. DECA's triangles with columns reordered [0, 2, 1].

    Returns:
        (2·(w−1−2·margin_x)·(h−1−2·margin_y), 3) int64; 122,990 rows for 256×256.
    """
    xs = np.arange(margin_x, w - 1 - margin_x)
    ys = np.arange(margin_y, h - 1 - margin_y)
    X, Y = np.meshgrid(xs, ys, indexing="ij")  # x outer, y inner
    p = (Y * w + X).reshape(-1)
    tri0 = np.stack([p, p + w, p + 1], 1)
    tri1 = np.stack([p + 1, p + w, p + w + 1], 1)
    return np.stack([tri0, tri1], 1).reshape(-1, 3).astype(np.int64)


def upsample_mesh(
    vertices: np.ndarray,
    normals: np.ndarray,
    displacement_map: np.ndarray,
    texture_map: np.ndarray,
    dense_template: Mapping,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dense detail mesh (DECA's `upsample_mesh`): one vertex per valid UV texel, displaced along the
    interpolated (re-normalised) coarse normal; texel k is read at `(int(y_coords[g]), int(x_coords[g]))`,
    g = `valid_pixel_ids[k]`.

    Args:
        vertices: (V, 3) coarse vertices. normals: (V, 3) vertex normals. displacement_map: (S, S) uv_z + fixed.
        texture_map: (S, S, 3) uint8 RGB. dense_template: DECA's `texture_data_<S>.npy` dict.
    Returns:
        dense vertices (N, 3) float64, colours (N, 3) uint8 RGB, faces (M, 3) int64 (0-based).
    """
    faces3d = np.asarray(dense_template["valid_pixel_3d_faces"]).astype(np.int64)
    bary = np.asarray(dense_template["valid_pixel_b_coords"], dtype=np.float64)
    ys, xs = texel_rows_cols(dense_template)  # DECA's indexing through valid_pixel_ids (deca-spec §6.1)
    verts = np.asarray(vertices)
    norms = np.asarray(normals)
    points = sum(verts[faces3d[:, i]] * bary[:, i : i + 1] for i in range(3))
    pnormals = sum(norms[faces3d[:, i]] * bary[:, i : i + 1] for i in range(3))
    pnormals = pnormals / np.linalg.norm(pnormals, axis=-1)[:, None]
    dense_vertices = points + np.asarray(displacement_map)[ys, xs][:, None] * pnormals
    colours = np.asarray(texture_map)[ys, xs]
    return dense_vertices, colours, np.asarray(dense_template["f"]).astype(np.int64)

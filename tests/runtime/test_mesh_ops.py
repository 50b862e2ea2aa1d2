"""Vertex normals and the UV-space gather against plain numpy references, bit for bit (the torch versions
reorder memory for speed, never the arithmetic)."""

import numpy as np
import pytest
import torch

from decaenv.runtime import mesh
from decaenv.runtime.renderer import Renderer


def _reference_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """DECA's vertex normals: the cross product at corners 1, 2, 0 added per vertex in that order, normalised."""
    out = np.zeros_like(vertices)
    v = vertices[:, faces]  # (B, F, 3, 3)
    a, b, c = v[:, :, 0], v[:, :, 1], v[:, :, 2]
    for corner, cross in ((1, np.cross(c - b, a - b)), (2, np.cross(a - c, b - c)), (0, np.cross(b - a, c - a))):
        for k in range(vertices.shape[0]):
            np.add.at(out[k], faces[:, corner], cross[k])
    norm = np.maximum(np.linalg.norm(out, axis=2, keepdims=True), 1e-6)
    return out / norm


@pytest.mark.parametrize("batch", [1, 3])
def test_vertex_normals_equal_the_reference(batch):
    rng = np.random.default_rng(batch)
    vertices = rng.normal(size=(batch, 40, 3)).astype(np.float32)
    faces = rng.integers(0, 36, size=(70, 3))  # vertices 36..39 unreferenced: zero normals
    got = mesh.vertex_normals(torch.from_numpy(vertices), torch.from_numpy(faces))
    assert got.shape == (batch, 40, 3) and got.is_contiguous()
    want = _reference_normals(vertices, faces)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-6)
    assert not got[:, 36:].any()
    # summation order: the torch path adds exactly what a float32 accumulation in index order adds
    sums = np.zeros_like(vertices)
    v = vertices[:, faces]
    a, b, c = v[:, :, 0], v[:, :, 1], v[:, :, 2]
    crosses = torch.linalg.cross(
        torch.from_numpy(np.concatenate([c - b, a - c, b - a], 1)),
        torch.from_numpy(np.concatenate([a - b, b - c, c - a], 1)),
        dim=-1,
    ).numpy()
    order = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    for k in range(batch):
        np.add.at(sums[k], order, crosses[k])
    exact = torch.nn.functional.normalize(torch.from_numpy(sums), eps=1e-6, dim=2)
    assert torch.equal(got, exact)


class _UVOnly(Renderer):
    """A renderer whose UV sampler is given (no rasterization needed)."""

    def __init__(self, texels, vertex_ids, bary, size):
        torch.nn.Module.__init__(self)
        self.uv_size = size
        self._sampler = (texels, vertex_ids, bary)

    def uv_sampler(self, device):
        return self._sampler


def test_world2uv_is_the_barycentric_sum_per_covered_texel():
    rng = np.random.default_rng(0)
    size, n_vertices, batch, dim = 8, 20, 2, 6
    texels = torch.from_numpy(np.sort(rng.choice(size * size, 30, replace=False)))
    vertex_ids = torch.from_numpy(rng.integers(0, n_vertices, (30, 3)))
    bary = torch.from_numpy(rng.dirichlet(np.ones(3), 30).astype(np.float32))
    values = torch.from_numpy(rng.normal(size=(batch, n_vertices, dim)).astype(np.float32))
    got = _UVOnly(texels, vertex_ids, bary, size).world2uv(values, channels=4)
    assert got.shape == (batch, 4, size, size)
    want = torch.zeros(batch, size * size, dim)
    corners = values[:, vertex_ids]  # (B, N, 3, D)
    want[:, texels] = (
        (corners[:, :, 0] * bary[:, 0:1]) + (corners[:, :, 1] * bary[:, 1:2]) + corners[:, :, 2] * bary[:, 2:3]
    )
    want = want.view(batch, size, size, dim).permute(0, 3, 1, 2)[:, :4]
    assert torch.equal(got, want)
    uncovered = torch.ones(size * size, dtype=torch.bool)
    uncovered[texels] = False
    assert not got.reshape(batch, 4, -1)[:, :, uncovered].any()

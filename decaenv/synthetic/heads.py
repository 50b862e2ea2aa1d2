"""The procedural FLAME-topology head as rasterizer input (tests and benchmarks of the rasterizer)."""

from __future__ import annotations

import torch

from decaenv.synthetic.topology import procedural_head


def deca_head_face_vertices(batch: int = 1, scale: float = 8.0, seed: int = 0, jitter: float = 0.0,
                            device="cpu") -> torch.Tensor:
    """The FLAME-topology procedural head (5,023 vertices, 9,976 faces) seen by DECA's camera.

    DECA's orthographic projection (spec §5): trans = [s(x + tx), -s(y + ty), -s z], then z += 10
    (§6.3). Each batch element gets a small random translation/scale when `jitter` > 0.

    Returns:
        (batch, 9976, 3, 3) float32 face vertices.
    """
    topo = procedural_head()
    verts = torch.tensor(topo.v, dtype=torch.float32)
    faces = torch.tensor(topo.f, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batch):
        s = scale * (1 + jitter * (torch.rand((), generator=gen).item() - 0.5))
        t = jitter * 0.05 * (torch.rand(2, generator=gen) - 0.5)
        trans = torch.stack([s * (verts[:, 0] + t[0]), -s * (verts[:, 1] + t[1]), -s * verts[:, 2] + 10], 1)
        out.append(trans[faces])
    return torch.stack(out).to(device)

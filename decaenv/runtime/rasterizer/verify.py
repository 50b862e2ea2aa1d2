"""Test meshes and comparisons shared by the build check, the tests and the benchmark.

`random_face_vertices` makes meshes that exercise every rule (sizes from sub-pixel to a third of the
image, both windings, faces partly off-screen, behind the camera, degenerate, and deliberate depth
ties); `compare` reports how two rasterizations differ. (A FLAME-topology head seen by DECA's camera,
for tests and benchmarks: `decaenv.synthetic.heads.deca_head_face_vertices`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch


def random_face_vertices(n_faces: int = 9976, batch: int = 1, seed: int = 0, device="cpu") -> torch.Tensor:
    """Random triangles in DECA's normalised image space (z around 10, like DECA's shifted vertices).

    Returns:
        (batch, n_faces, 3, 3) float32.
    """
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(batch, n_faces, 1, 3, generator=gen) * torch.tensor([2.4, 2.4, 1.0]) - torch.tensor(
        [1.2, 1.2, -9.5]
    )
    size = 0.3 * torch.rand(batch, n_faces, 1, 1, generator=gen) ** 3
    fv = centre + size * torch.randn(batch, n_faces, 3, 3, generator=gen) * torch.tensor([1.0, 1.0, 0.2])
    k = max(n_faces // 50, 1)
    if n_faces >= 4 * k:
        fv[:, :k, :, 2] -= 10.5  # entirely behind the camera: zmax < 0
        fv[:, k : 2 * k, 2] = (fv[:, k : 2 * k, 0] + fv[:, k : 2 * k, 1]) / 2  # degenerate: collinear vertices
        fv[:, -k:] = fv[:, 2 * k : 3 * k]  # exact depth ties: the later copy must lose
    return fv.to(device)


@dataclass(frozen=True)
class FragmentsDiff:
    """How two rasterizations differ.

    Attributes:
        pixels: pixels compared; face_mismatches: pixels whose face index differs;
        max_bary, max_depth: largest absolute difference where both saw the same face.
    """

    pixels: int
    face_mismatches: int
    max_bary: float
    max_depth: float

    @property
    def identical(self) -> bool:
        return self.face_mismatches == 0 and self.max_bary == 0 and self.max_depth == 0

    def within(self, tol: float = 1e-5) -> bool:
        return self.face_mismatches == 0 and self.max_bary <= tol and self.max_depth <= tol

    def describe(self) -> str:
        return (
            f"{self.face_mismatches} of {self.pixels} pixels with another face, "
            f"max |Δbary| {self.max_bary:.3g}, max |Δdepth| {self.max_depth:.3g}"
        )


def _triple(x) -> tuple:
    if hasattr(x, "pix_to_face"):
        x = (x.pix_to_face, x.bary, x.zbuf)
    return tuple(t.detach().cpu() for t in tuple(x)[:3])


def compare(a, b) -> FragmentsDiff:
    """Compare two rasterizations, each a Fragments or a (pix_to_face, bary, zbuf) triple, on the CPU."""
    pa, ba, za = _triple(a)
    pb, bb, zb = _triple(b)
    same = pa == pb
    max_bary = float((ba - bb).abs()[same].max()) if same.any() else 0.0
    max_depth = float((za - zb).abs()[same].max()) if same.any() else 0.0
    return FragmentsDiff(pa.numel(), int((~same).sum()), max_bary, max_depth)


def check_against_reference(
    run,
    device="cpu",
    seeds: Sequence[int] = (0, 1),
    sizes: Sequence[tuple] = ((48, 64), (40, 40)),
    n_faces: int = 400,
    batch: int = 2,
) -> FragmentsDiff:
    """Run `run(fv, xs, ys)` and the reference on random meshes; return the worst difference."""
    from decaenv.runtime.rasterizer.api import pixel_centres, prepare_face_vertices
    from decaenv.runtime.rasterizer.reference import rasterize_reference

    worst: Optional[FragmentsDiff] = None
    for seed in seeds:
        for h, w in sizes:
            fv = prepare_face_vertices(random_face_vertices(n_faces, batch, seed), h, w)
            xs, ys = pixel_centres(h, w)
            expected = rasterize_reference(fv, xs, ys)
            got = run(fv.to(device), xs.to(device), ys.to(device))
            diff = compare(expected, got)
            if worst is None or (diff.face_mismatches, diff.max_bary) > (worst.face_mismatches, worst.max_bary):
                worst = diff
    if worst is None:
        raise ValueError("check_against_reference needs at least one seed and one size")
    return worst

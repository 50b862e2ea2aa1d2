"""Lighting: 9-band spherical harmonics (27 = 9 × RGB, deca-spec §6.4) and DECA's directional shape lights
(§6.6)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: SH constant factors c0..c8 (deca-spec §6.1).
SH_CONSTANTS = (
    1 / math.sqrt(4 * math.pi),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * (3 / 2) * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * (1 / 2) * math.sqrt(5 / (4 * math.pi)),
)
#: The five default shape-rendering lights (directions, FLAME world frame) and their intensity.
SHAPE_LIGHT_DIRECTIONS = ((-1, 1, 1), (1, 1, 1), (-1, -1, 1), (1, -1, 1), (0, 0, 1))
SHAPE_LIGHT_INTENSITY = 1.7
#: Grey albedo of the shape renders (180/255).
SHAPE_GREY = 180.0 / 255.0


def sh_shading(normal_images: torch.Tensor, sh_coeff: torch.Tensor) -> torch.Tensor:
    """SH shading of a (not necessarily unit) normal map.

    Args:
        normal_images: (B, 3, H, W). sh_coeff: (B, 9, 3) light code (band-major).
    Returns:
        (B, 3, H, W) shading.
    """
    nx, ny, nz = normal_images[:, 0], normal_images[:, 1], normal_images[:, 2]
    basis = torch.stack([torch.ones_like(nx), nx, ny, nz, nx * ny, nx * nz, ny * nz, nx**2 - ny**2, 3 * nz**2 - 1], 1)
    factor = torch.tensor(SH_CONSTANTS, dtype=basis.dtype, device=basis.device)
    basis = basis * factor[None, :, None, None]
    return torch.einsum("bkc,bkhw->bchw", sh_coeff.to(basis.dtype), basis)


def default_shape_lights(batch: int, device, dtype=torch.float32) -> torch.Tensor:
    """(B, 5, 6) [direction, intensity] for `render_shape`."""
    directions = torch.tensor(SHAPE_LIGHT_DIRECTIONS, dtype=dtype, device=device)
    intensities = torch.full_like(directions, SHAPE_LIGHT_INTENSITY)
    return torch.cat([directions, intensities], 1)[None].expand(batch, -1, -1)


def directional_shading(normals: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
    """Mean over the lights of clamp(n · l̂, 0, 1) × intensity.

    Args:
        normals: (B, N, 3). lights: (B, L, 6) direction (3) then RGB intensity (3).
    Returns:
        (B, N, 3).
    """
    directions = F.normalize(lights[:, :, :3], dim=2)
    cosines = torch.clamp(torch.einsum("bnc,blc->bnl", normals, directions), 0.0, 1.0)
    return torch.einsum("bnl,blc->bnc", cosines, lights[:, :, 3:]) / lights.shape[1]

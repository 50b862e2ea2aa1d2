"""Lighting: 9-band spherical harmonics (27 = 9 × RGB, deca-spec §6.4) and DECA's directional shape lights
(§6.6)."""

from __future__ import annotations

import math
from typing import Dict, Tuple

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


def shape_shading(
    normal_map: torch.Tensor, lights: torch.Tensor, grey: torch.Tensor, alpha: torch.Tensor, backdrop: torch.Tensor
) -> torch.Tensor:
    """DECA's shape image: the grey surface lit by `lights` where `alpha` is 1, `backdrop` where it is 0.

    Args:
        normal_map: (B, 3, H, W). lights: (B, L, 6) as `directional_shading`. grey, alpha: (B, 1, H, W).
        backdrop: (B, 3, H, W).
    Returns:
        (B, 3, H, W) grey · light · alpha + backdrop · (1 − alpha).
    """
    op = _compiled_shading(normal_map, lights, grey, alpha, backdrop)
    if op is None:
        return _torch_shape_shading(normal_map, lights, grey, alpha, backdrop)
    return _kernel_shape_shading(op, normal_map, lights, grey, alpha, backdrop)


def _kernel_shape_shading(op, normal_map, lights, grey, alpha, backdrop) -> torch.Tensor:
    directions = F.normalize(lights[:, :, :3], dim=2).contiguous()
    planes = [t.contiguous() for t in (normal_map, grey, alpha, backdrop)]
    return op(planes[0], directions, lights[:, :, 3:].contiguous(), *planes[1:])


def _torch_shape_shading(normal_map, lights, grey, alpha, backdrop) -> torch.Tensor:
    batch, _, h, w = normal_map.shape
    flat = normal_map.permute(0, 2, 3, 1).reshape(batch, -1, 3)
    light = directional_shading(flat, lights).reshape(batch, h, w, 3).permute(0, 3, 1, 2)
    return grey * light * alpha + backdrop * (1 - alpha)


#: Input shapes the kernel was checked on in this process (shape key → equal to the torch path).
_KERNEL_AGREES: Dict[Tuple, bool] = {}
_CHECKED_SHAPES = 256  # (`--render-orig` over photos of many sizes: the checks start over beyond this)


def _compiled_shading(normal_map, lights, grey, alpha, backdrop):
    """The extension's shading kernel (one pass instead of two batched matrix products and six elementwise
    passes: 8 × 224², 3.8 → 0.6 ms) where a build is loaded, it applies (float32 CPU tensors, no gradient
    wanted, shapes as documented) and, on the first call with these shapes in this process, it gave the torch
    path's result bit for bit (torch's kernels may round otherwise on another build or CPU); else None."""
    tensors = (normal_map, lights, grey, alpha, backdrop)
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None
    if normal_map.dim() != 4 or lights.dim() != 3 or lights.shape[1] == 0 or lights.shape[2] != 6:
        return None
    batch, channels, h, w = normal_map.shape
    if channels != 3 or lights.shape[0] != batch or backdrop.shape != normal_map.shape:
        return None
    if grey.shape != (batch, 1, h, w) or alpha.shape != grey.shape:
        return None
    from decaenv.runtime.rasterizer import extension

    def agrees(op) -> bool:
        with torch.no_grad():
            return bool(torch.equal(_kernel_shape_shading(op, *tensors), _torch_shape_shading(*tensors)))

    key = (tuple(normal_map.shape), lights.shape[1])
    return extension.checked_op("shade_directional", _KERNEL_AGREES, key, agrees, limit=_CHECKED_SHAPES)

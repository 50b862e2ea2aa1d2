"""`D_detail`: the detail decoder (DCGAN-style generator) with DECA's BatchNorm eps quirk (deca-spec §3)."""

from __future__ import annotations

from typing import List

import torch
from torch import nn

from decaenv.deca_layout import DETAIL_LATENT
from decaenv.runtime.layers import layer_types

#: eps of the BatchNorms after each upsampling conv: DECA passes 0.8 as BatchNorm2d's second positional
#: argument (meant as momentum in the DCGAN code it came from), so eps is 0.8. It must be reproduced.
QUIRK_BN_EPS = 0.8


class DetailGenerator(nn.Module):
    """Latent [jaw(3), exp(50), detail(128)] → displacement map `uv_z` in (-max_z, max_z).

    Module indices inside `conv_blocks` match DECA's checkpoint (`conv_blocks.{0,2,3,6,7,...,21}`).

    Args:
        latent_dim: 181. out_channels: 1. out_scale: `max_z` = 0.01. init_size: 8 (8×8 → 256×256).
        init: randomly initialise the weights (False: a checkpoint fills them, see `decaenv.runtime.layers`).
    """

    def __init__(
        self,
        latent_dim: int = DETAIL_LATENT,
        out_channels: int = 1,
        out_scale: float = 0.01,
        init_size: int = 8,
        init: bool = True,
    ):
        super().__init__()
        conv, linear = layer_types(init)
        self.out_scale = out_scale
        self.init_size = init_size
        self.l1 = nn.Sequential(linear(latent_dim, 128 * init_size**2))
        layers: List[nn.Module] = [nn.BatchNorm2d(128)]
        for cin, cout in ((128, 128), (128, 64), (64, 64), (64, 32), (32, 16)):
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                conv(cin, cout, 3, stride=1, padding=1),
                nn.BatchNorm2d(cout, eps=QUIRK_BN_EPS),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers += [conv(16, out_channels, 3, stride=1, padding=1), nn.Tanh()]
        self.conv_blocks = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent: (B, 181) float32 → uv_z (B, 1, 256, 256) float32 = tanh(·) × out_scale."""
        x = self.l1(latent).view(latent.shape[0], 128, self.init_size, self.init_size)
        return self.conv_blocks(x) * self.out_scale


def detail_latent(pose: torch.Tensor, exp: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
    """D_detail's input in DECA's order: [jaw pose (pose[:, 3:6]), expression, detail code] → (B, 181)."""
    return torch.cat([pose[:, 3:6], exp, detail], dim=1)

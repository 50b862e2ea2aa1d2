"""DECA's image encoders (`E_flame`: 236 codes, `E_detail`: 128 codes): ResNet-50 + a two-layer MLP head."""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from decaenv.deca_layout import CODE_SPLIT
from decaenv.runtime.layers import layer_types
from decaenv.runtime.resnet import ResNet50


class ResnetEncoder(nn.Module):
    """`encoder` (ResNet-50) → `layers` = Linear(2048, 1024) → ReLU → Linear(1024, outsize); no output op.

    Args:
        outsize: 236 for `E_flame`, 128 for `E_detail` (deca-spec §2).
        init: randomly initialise the weights (False: a checkpoint fills them, see `decaenv.runtime.layers`).
    """

    def __init__(self, outsize: int, init: bool = True):
        super().__init__()
        _, linear = layer_types(init)
        self.encoder = ResNet50(init)
        self.layers = nn.Sequential(linear(ResNet50.FEATURE_DIM, 1024), nn.ReLU(), linear(1024, outsize))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, 224, 224) float32 in [0, 1] → (B, outsize) float32."""
        return self.layers(self.encoder(images))


def split_codes(code: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Split E_flame's output in DECA's order (shape 100, tex 50, exp 50, pose 6, cam 3, light 27).

    Args:
        code: (B, 236) float32.
    Returns:
        dict of views; `light` is reshaped to (B, 9, 3) (element (k, c) = code[209 + 3k + c]).
    """
    out: Dict[str, torch.Tensor] = {}
    start = 0
    for name, size in CODE_SPLIT:
        out[name] = code[:, start : start + size]
        start += size
    if start != code.shape[1]:
        raise ValueError(f"E_flame output has {code.shape[1]} values, the code split needs {start}")
    out["light"] = out["light"].reshape(code.shape[0], 9, 3)
    return out

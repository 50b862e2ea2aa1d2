"""ResNet-50 backbone (torchvision-style v1.5, no `fc`), written here so no torchvision is needed.

Parameter names follow torchvision's (`conv1`, `bn1`, `layer{1..4}.{i}.conv{1,2,3}`, `.downsample.{0,1}`),
which is what DECA's checkpoint stores under `encoder.` (deca-spec §1, §2).
"""

from __future__ import annotations

from typing import List, Optional, Type

import torch
from torch import nn

from decaenv.deca_layout import RESNET50_LAYERS, RESNET_EXPANSION
from decaenv.runtime.layers import layer_types


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride here, v1.5) → 1×1 (×4 channels), BatchNorm after each, residual add, ReLU."""

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        conv: Type[nn.Conv2d] = nn.Conv2d,
    ):
        super().__init__()
        out_channels = width * RESNET_EXPANSION
        self.conv1 = conv(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) → (B, 4·width, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _make_layer(in_channels: int, width: int, blocks: int, stride: int, conv: Type[nn.Conv2d]) -> nn.Sequential:
    out_channels = width * RESNET_EXPANSION
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            conv(in_channels, out_channels, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
        )
    layers: List[nn.Module] = [Bottleneck(in_channels, width, stride, downsample, conv)]
    layers += [Bottleneck(out_channels, width, conv=conv) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50(nn.Module):
    """The backbone: 224×224 RGB in [0, 1] (no normalisation, deca-spec §2) → (B, 2048) features.

    The final `AvgPool2d(7, stride=1)` equals global average pooling only for 224×224 input, as in DECA.

    Args:
        init: randomly initialise the convolutions (False: a checkpoint fills them, see `layers`).
    """

    FEATURE_DIM = 512 * RESNET_EXPANSION
    # Set by name in __init__ (torchvision's attribute names, which the checkpoint's keys use).
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, init: bool = True):
        super().__init__()
        conv, _ = layer_types(init)
        self.conv1 = conv(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = 64
        for index, (width, blocks) in enumerate(RESNET50_LAYERS, start=1):
            stride = 1 if index == 1 else 2
            setattr(self, f"layer{index}", _make_layer(in_channels, width, blocks, stride, conv))
            in_channels = width * RESNET_EXPANSION
        self.avgpool = nn.AvgPool2d(7, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 224, 224) float32 → (B, 2048)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

"""BatchNorm folding for DECA's networks: each eval-mode BatchNorm merged into the convolution (or linear
layer) before it, in float64 and rounded once. Shared by the fast graphs (`decaenv.runtime.fast`) and the
packed CPU graphs (`decaenv.runtime.fast_packed`)."""

from __future__ import annotations

import copy
from typing import List, Tuple, Type, TypeVar

import torch
from torch import nn

from decaenv.runtime.decoders import DetailGenerator

_T = TypeVar("_T")


def expect_type(value: object, kind: Type[_T]) -> _T:
    """`value`, checked to be a `kind` (the layers folded here are looked up by name on DECA's modules)."""
    if not isinstance(value, kind):
        raise TypeError(f"expected a {kind.__name__}, found {type(value).__name__}")
    return value


def _pair(value: Tuple[int, ...]) -> Tuple[int, int]:
    """A 2-D convolution's (height, width) parameter, as `nn.Conv2d` stores it."""
    return value[0], value[1]


# -- BatchNorm folding ----------------------------------------------------------------------------------
def _bn_scale_shift(bn: nn.BatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, shift) of an eval-mode BatchNorm, in float64: y = x·scale + shift."""
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("a BatchNorm without running statistics cannot be folded")
    var = bn.running_var.double()
    scale = bn.weight.double() / torch.sqrt(var + bn.eps)
    return scale, bn.bias.double() - bn.running_mean.double() * scale


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution (with bias) computing bn(conv(x)) in eval mode."""
    scale, shift = _bn_scale_shift(bn)
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        _pair(conv.kernel_size),
        _pair(conv.stride),
        conv.padding if isinstance(conv.padding, str) else _pair(conv.padding),
        _pair(conv.dilation),
        conv.groups,
        bias=True,
    )
    weight = conv.weight.double() * scale[:, None, None, None]
    bias = shift if conv.bias is None else conv.bias.double() * scale + shift
    with torch.no_grad():
        fused.weight.copy_(weight.float())
        expect_type(fused.bias, torch.Tensor).copy_(bias.float())  # bias=True above
    return fused


def fold_linear_bn(linear: nn.Linear, bn: nn.BatchNorm2d, positions: int) -> nn.Linear:
    """A linear layer computing bn(linear(x).view(B, C, positions)) flattened: output o is channel o // positions."""
    scale, shift = _bn_scale_shift(bn)
    scale, shift = scale.repeat_interleave(positions), shift.repeat_interleave(positions)
    fused = nn.Linear(linear.in_features, linear.out_features)
    with torch.no_grad():
        fused.weight.copy_((linear.weight.double() * scale[:, None]).float())
        fused.bias.copy_((linear.bias.double() * scale + shift).float())
    return fused


def fold_resnet(resnet: nn.Module) -> nn.Module:
    """Fold every BatchNorm of a `ResNet50` (a copy) into its convolution; the BatchNorms become Identity."""
    net = copy.deepcopy(resnet)
    net.conv1 = fold_conv_bn(expect_type(net.conv1, nn.Conv2d), expect_type(net.bn1, nn.BatchNorm2d))
    net.bn1 = nn.Identity()
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in expect_type(layer, nn.Sequential):
            for k in (1, 2, 3):
                conv = expect_type(getattr(block, f"conv{k}"), nn.Conv2d)
                bn = expect_type(getattr(block, f"bn{k}"), nn.BatchNorm2d)
                setattr(block, f"conv{k}", fold_conv_bn(conv, bn))
                setattr(block, f"bn{k}", nn.Identity())
            if block.downsample is not None:
                downsample = expect_type(block.downsample, nn.Sequential)
                block.downsample = nn.Sequential(
                    fold_conv_bn(expect_type(downsample[0], nn.Conv2d), expect_type(downsample[1], nn.BatchNorm2d))
                )
    return net.eval()


class FusedDetail(nn.Module):
    """`DetailGenerator` with its BatchNorms folded: l1 (+BN0) → [upsample, conv(+BN), LeakyReLU]×5 → conv → tanh."""

    def __init__(self, generator: DetailGenerator):
        super().__init__()
        blocks = list(generator.conv_blocks)
        self.init_size = generator.init_size
        self.out_scale = float(generator.out_scale)
        self.l1 = fold_linear_bn(
            expect_type(generator.l1[0], nn.Linear), expect_type(blocks[0], nn.BatchNorm2d), generator.init_size**2
        )
        layers: List[nn.Module] = []
        index = 1
        while index < len(blocks):
            module = blocks[index]
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            if isinstance(module, nn.Conv2d) and isinstance(following, nn.BatchNorm2d):
                layers.append(fold_conv_bn(module, following))
                index += 2
                continue
            layers.append(copy.deepcopy(module))
            index += 1
        self.blocks = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (B, 181) → uv_z (B, 1, 256, 256)."""
        x = self.l1(latent).view(latent.shape[0], -1, self.init_size, self.init_size)
        return self.blocks(x) * self.out_scale

"""Convolution and linear layer types for DECA's networks: torch's own, or ones a checkpoint fills.

DECA's three networks hold 50 M parameters whose Kaiming initialisation (~0.18 s per load, ~30 % of
`DECA()` on two cores) `load_strict` overwrites at once, every key checked. `layer_types(init=False)` gives
subclasses that skip it; their weights are uninitialised memory until the checkpoint is copied in. Real memory
from the start: torch's meta device was slower here (its first use in a process costs more than the
initialisation it saves).
"""

from __future__ import annotations

from typing import Tuple, Type

from torch import nn


class FilledConv2d(nn.Conv2d):
    """`nn.Conv2d` for a checkpoint to fill: no random initialisation."""

    def reset_parameters(self) -> None:
        return None


class FilledLinear(nn.Linear):
    """`nn.Linear` for a checkpoint to fill: no random initialisation."""

    def reset_parameters(self) -> None:
        return None


def layer_types(init: bool = True) -> Tuple[Type[nn.Conv2d], Type[nn.Linear]]:
    """(Conv2d, Linear) classes: torch's (`init`), or the checkpoint-filled ones."""
    return (nn.Conv2d, nn.Linear) if init else (FilledConv2d, FilledLinear)

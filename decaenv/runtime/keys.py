"""The key layout of DECA's `deca_model.tar` (deca-spec §1), as plain data: no torch needed.

Used by the synthetic-asset generator (to write a checkpoint of the right layout), by the doctor (to
validate a checkpoint's keys and shapes without building networks) and by the runtime's strict loader
(to name missing and unexpected keys).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Tuple

Shape = Tuple[int, ...]

#: Top-level keys of the checkpoint that inference reads.
NETWORK_KEYS = ("E_flame", "E_detail", "D_detail")

#: Output sizes of the two encoders (spec §2) and the code split of E_flame (in order).
N_FLAME_CODE = 236
N_DETAIL_CODE = 128
CODE_SPLIT = (("shape", 100), ("tex", 50), ("exp", 50), ("pose", 6), ("cam", 3), ("light", 27))

#: ResNet-50: (bottleneck width, number of blocks) per layer; expansion 4; stride 2 from layer2 on.
RESNET50_LAYERS = ((64, 3), (128, 4), (256, 6), (512, 3))
RESNET_EXPANSION = 4

#: D_detail: latent = jaw(3) + exp(50) + detail(128); conv channels and their indices in `conv_blocks`.
DETAIL_LATENT = 3 + 50 + N_DETAIL_CODE
DETAIL_BN_BLOCKS = ((0, 128), (3, 128), (7, 64), (11, 64), (15, 32), (19, 16))
DETAIL_CONV_BLOCKS = ((2, 128, 128), (6, 128, 64), (10, 64, 64), (14, 64, 32), (18, 32, 16), (21, 16, 1))


def _batchnorm(prefix: str, channels: int) -> Dict[str, Shape]:
    return OrderedDict([
        (f"{prefix}.weight", (channels,)),
        (f"{prefix}.bias", (channels,)),
        (f"{prefix}.running_mean", (channels,)),
        (f"{prefix}.running_var", (channels,)),
        (f"{prefix}.num_batches_tracked", ()),
    ])


def resnet50_layout(prefix: str = "") -> Dict[str, Shape]:
    """State-dict keys and shapes of a torchvision-style ResNet-50 without `fc`, in module order."""
    out: Dict[str, Shape] = OrderedDict()
    out[f"{prefix}conv1.weight"] = (64, 3, 7, 7)
    out.update(_batchnorm(f"{prefix}bn1", 64))
    in_ch = 64
    for layer_idx, (width, blocks) in enumerate(RESNET50_LAYERS, start=1):
        out_ch = width * RESNET_EXPANSION
        for block in range(blocks):
            p = f"{prefix}layer{layer_idx}.{block}"
            out[f"{p}.conv1.weight"] = (width, in_ch, 1, 1)
            out.update(_batchnorm(f"{p}.bn1", width))
            out[f"{p}.conv2.weight"] = (width, width, 3, 3)
            out.update(_batchnorm(f"{p}.bn2", width))
            out[f"{p}.conv3.weight"] = (out_ch, width, 1, 1)
            out.update(_batchnorm(f"{p}.bn3", out_ch))
            if block == 0:
                out[f"{p}.downsample.0.weight"] = (out_ch, in_ch, 1, 1)
                out.update(_batchnorm(f"{p}.downsample.1", out_ch))
            in_ch = out_ch
    return out


def encoder_layout(outsize: int) -> Dict[str, Shape]:
    """`E_flame` (outsize 236) / `E_detail` (outsize 128): `encoder.*` ResNet-50 + `layers.{0,2}` head."""
    out = resnet50_layout("encoder.")
    out["layers.0.weight"] = (1024, 2048)
    out["layers.0.bias"] = (1024,)
    out["layers.2.weight"] = (outsize, 1024)
    out["layers.2.bias"] = (outsize,)
    return out


def detail_decoder_layout() -> Dict[str, Shape]:
    """`D_detail`: `l1.0` linear, BatchNorms and convs at their `conv_blocks` indices, in module order."""
    out: Dict[str, Shape] = OrderedDict()
    out["l1.0.weight"] = (128 * 8 * 8, DETAIL_LATENT)
    out["l1.0.bias"] = (128 * 8 * 8,)
    entries = [(idx, "bn", ch) for idx, ch in DETAIL_BN_BLOCKS]
    entries += [(idx, "conv", (cin, cout)) for idx, cin, cout in DETAIL_CONV_BLOCKS]
    for idx, kind, arg in sorted(entries):
        if kind == "bn":
            out.update(_batchnorm(f"conv_blocks.{idx}", arg))
        else:
            cin, cout = arg
            out[f"conv_blocks.{idx}.weight"] = (cout, cin, 3, 3)
            out[f"conv_blocks.{idx}.bias"] = (cout,)
    return out


def checkpoint_layout() -> Dict[str, Dict[str, Shape]]:
    """`{'E_flame': {...}, 'E_detail': {...}, 'D_detail': {...}}` with every key and shape."""
    return OrderedDict([
        ("E_flame", encoder_layout(N_FLAME_CODE)),
        ("E_detail", encoder_layout(N_DETAIL_CODE)),
        ("D_detail", detail_decoder_layout()),
    ])


def is_buffer(key: str) -> bool:
    """BatchNorm running statistics and counters (buffers, not parameters)."""
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


def parameter_count(layout: Dict[str, Shape]) -> int:
    """Number of trainable parameters (buffers excluded) in a layout."""
    total = 0
    for key, shape in layout.items():
        if is_buffer(key):
            continue
        n = 1
        for s in shape:
            n *= s
        total += n
    return total

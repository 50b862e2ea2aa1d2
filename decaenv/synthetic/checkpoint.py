"""A synthetic `deca_model.tar`: DECA's exact keys and shapes (deca-spec §1), random values.

The values are scaled so the networks stay numerically tame and the decoded face is plausible: the
encoders' last layers are small, so the codes sit near a prior (`FLAME_CODE_PRIOR`) that puts the head
upright and centred in the 224 crop, with an image-dependent variation on top. The file also carries an
`opt` entry shaped like the Adam state of the detail stage that the released file is thought to hold,
so its size (about 433 MB) matches the real one's order of magnitude; pass `with_optimizer=False` for a
small file.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Dict

import numpy as np

from decaenv.deca_layout import CODE_SPLIT, checkpoint_layout

#: Bias of E_flame's last layer: the codes an "average" image decodes to.
FLAME_CODE_PRIOR = {
    "cam": (8.0, 0.0, 0.01),   # orthographic scale and translation: face fills ~70 % of the crop
    "pose": (0.0, 0.0, 0.0, 0.06, 0.0, 0.0),  # upright head, mouth slightly open
    "light": (2.6, 2.5, 2.4) + (0.0,) * 24,   # mostly ambient SH lighting
}
#: Gain of E_flame's last-layer weights per code group (the image-dependent part of each code).
CODE_GAIN = {"shape": 0.8, "tex": 0.8, "exp": 0.6, "pose": 0.05, "cam": 0.01, "light": 0.4}
DETAIL_GAIN = 1.5


def _code_prior() -> np.ndarray:
    bias = np.zeros(236, np.float32)
    start = 0
    for name, size in CODE_SPLIT:
        if name in FLAME_CODE_PRIOR:
            bias[start:start + size] = FLAME_CODE_PRIOR[name]
        start += size
    return bias


def _code_gain() -> np.ndarray:
    gain = np.zeros(236, np.float32)
    start = 0
    for name, size in CODE_SPLIT:
        gain[start:start + size] = CODE_GAIN[name]
        start += size
    return gain


def _encoder(layout: Dict[str, tuple], rng: np.random.Generator, head_bias: np.ndarray,
             head_gain: np.ndarray) -> Dict[str, np.ndarray]:
    out = OrderedDict()
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            out[key] = np.array(0, np.int64)
        elif key.endswith("running_mean"):
            out[key] = (0.01 * rng.standard_normal(shape)).astype(np.float32)
        elif key.endswith("running_var"):
            out[key] = rng.uniform(0.9, 1.1, shape).astype(np.float32)
        elif key.startswith("layers.2"):
            if key.endswith("weight"):
                std = head_gain[:, None] / np.sqrt(shape[1])
                out[key] = (std * rng.standard_normal(shape)).astype(np.float32)
            else:
                out[key] = head_bias.astype(np.float32)
        elif key.startswith("layers.0"):
            scale = 1.0 / np.sqrt(shape[1]) if key.endswith("weight") else 0.0
            out[key] = (scale * rng.standard_normal(shape)).astype(np.float32)
        elif ".bn" in key or "downsample.1" in key or key.startswith("encoder.bn1"):
            # BatchNorm affine: the last BN of each residual branch is damped so activations stay O(1).
            damp = 0.5 if (".bn3." in key or "downsample.1" in key) else 1.0
            if key.endswith("weight"):
                out[key] = np.full(shape, damp, np.float32)
            else:
                out[key] = (0.01 * rng.standard_normal(shape)).astype(np.float32)
        else:  # conv weights: He-normal
            out[key] = _he_normal(rng, shape)
    return out


def _he_normal(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    weight = rng.standard_normal(shape, dtype=np.float32)
    weight *= np.float32(np.sqrt(2.0 / int(np.prod(shape[1:]))))
    return weight


def _decoder(layout: Dict[str, tuple], rng: np.random.Generator) -> Dict[str, np.ndarray]:
    out = OrderedDict()
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            out[key] = np.array(0, np.int64)
        elif key.endswith("running_mean"):
            out[key] = np.zeros(shape, np.float32)
        elif key.endswith("running_var"):
            out[key] = np.ones(shape, np.float32)
        elif len(shape) == 1 and key.endswith("weight"):  # BatchNorm gamma
            out[key] = np.ones(shape, np.float32)
        elif key.endswith("bias"):
            out[key] = (0.01 * rng.standard_normal(shape)).astype(np.float32)
        else:
            out[key] = _he_normal(rng, shape)
    return out


def _optimizer_state(detail_params, rng: np.random.Generator) -> dict:
    """Adam `state_dict()` (torch 1.6 layout) over the detail-stage parameters."""
    import torch

    state = {}
    for i, shape in enumerate(detail_params):
        exp_avg = rng.standard_normal(shape, dtype=np.float32)
        exp_avg *= np.float32(1e-4)
        exp_avg_sq = rng.random(shape, dtype=np.float32)
        exp_avg_sq *= np.float32(1e-8)
        state[i] = {"step": 100000, "exp_avg": torch.from_numpy(exp_avg),
                    "exp_avg_sq": torch.from_numpy(exp_avg_sq)}
    group = {"lr": 5e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0001, "amsgrad": False,
             "params": list(range(len(detail_params)))}
    return {"state": state, "param_groups": [group]}


def checkpoint_dict(seed: int, with_optimizer: bool = True) -> dict:
    """The checkpoint as a dict of OrderedDicts of CPU tensors (plus `opt`)."""
    import torch

    rng = np.random.default_rng([seed, 1])
    layout = checkpoint_layout()
    detail_bias = (0.5 * rng.standard_normal(128)).astype(np.float32)
    nets = {
        "E_flame": _encoder(layout["E_flame"], rng, _code_prior(), _code_gain()),
        "E_detail": _encoder(layout["E_detail"], rng, detail_bias, np.full(128, DETAIL_GAIN, np.float32)),
        "D_detail": _decoder(layout["D_detail"], rng),
    }
    ckpt = {name: OrderedDict((k, torch.from_numpy(np.array(v, order="C"))) for k, v in sd.items())
            for name, sd in nets.items()}
    if with_optimizer:
        params = [shape for net in ("E_detail", "D_detail") for key, shape in layout[net].items()
                  if not key.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        ckpt["opt"] = _optimizer_state(params, rng)
    return ckpt


def write_checkpoint(path: os.PathLike, seed: int, with_optimizer: bool = True) -> None:
    """`torch.save` the checkpoint to an open file handle (so the zip's record names do not depend on
    the file name, keeping the bytes identical for the same seed)."""
    import torch

    with open(path, "wb") as fh:
        torch.save(checkpoint_dict(seed, with_optimizer), fh)

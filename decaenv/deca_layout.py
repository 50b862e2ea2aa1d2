"""DECA's data-dir and checkpoint layout as plain data (deca-spec §1, §6): the one place that names DECA's
data files and the keys and shapes of `deca_model.tar`. No torch, no numpy.

Read by the runtime (config paths, strict checkpoint loading, network shapes), `paths` (what marks a DECA
`data/` folder), fetch (content checks; `manifests/deca.toml` names the same files, checked by a test), the
doctor (data checks) and the synthetic-asset generator (what to write).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Tuple

# -- the data dir ---------------------------------------------------------------------------------------------
CHECKPOINT_FILE = "deca_model.tar"
FLAME_FILE = "generic_model.pkl"
FLAME_NPZ_FILE = "generic_model.npz"  # decaenv's chumpy-free conversion of FLAME_FILE, beside it
FLAME_FOLDER = "FLAME2020"  # the unpacked FLAME2020.zip some users keep in data/
DENSE_TEMPLATE_FILE = "texture_data_256.npy"

#: File names inside a DECA data dir (DECA's `data/` layout), by DECA config attribute.
DATA_FILES: Dict[str, str] = {
    "pretrained_modelpath": CHECKPOINT_FILE,
    "topology_path": "head_template.obj",
    "dense_template_path": DENSE_TEMPLATE_FILE,
    "fixed_displacement_path": "fixed_displacement_256.npy",
    "flame_model_path": FLAME_FILE,
    "flame_lmk_embedding_path": "landmark_embedding.npy",
    "face_mask_path": "uv_face_mask.png",
    "face_eye_mask_path": "uv_face_eye_mask.png",
    "mean_tex_path": "mean_texture.jpg",
    "tex_path": "FLAME_albedo_from_BFM.npz",
    "flame_tex_path": "FLAME_texture.npz",
}

#: DECA's public topology files (DECA's repository ships them; no licence to accept).
PUBLIC_FILES: Tuple[str, ...] = tuple(
    DATA_FILES[a]
    for a in (
        "topology_path",
        "flame_lmk_embedding_path",
        "fixed_displacement_path",
        "mean_tex_path",
        "face_eye_mask_path",
        "face_mask_path",
    )
)

#: Licensed files the user must supply (or `decaenv fetch` with an account): DECA's weights and FLAME.
USER_FILES: Tuple[str, ...] = (CHECKPOINT_FILE, FLAME_FILE)

#: Files whose presence marks a folder as a DECA `data/` folder (public files and user-supplied ones).
DATA_MARKERS: Tuple[str, ...] = (
    FLAME_FILE,
    FLAME_NPZ_FILE,
    CHECKPOINT_FILE,
    DATA_FILES["topology_path"],
    DATA_FILES["flame_lmk_embedding_path"],
    DATA_FILES["fixed_displacement_path"],
    FLAME_FOLDER,
)


def has_flame(folder: Path) -> bool:
    """Whether `folder` holds the FLAME model (DECA's pickle, or decaenv's npz conversion of it)."""
    return (Path(folder) / FLAME_FILE).is_file() or (Path(folder) / FLAME_NPZ_FILE).is_file()


def missing_user_files(folder: Path) -> List[str]:
    """The `USER_FILES` that `folder` lacks (FLAME counts as present in either of its forms)."""
    folder = Path(folder)
    missing = [] if (folder / CHECKPOINT_FILE).is_file() else [CHECKPOINT_FILE]
    return missing + ([] if has_flame(folder) else [FLAME_FILE])


# -- the checkpoint (`deca_model.tar`) ------------------------------------------------------------------------
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
    return OrderedDict(
        [
            (f"{prefix}.weight", (channels,)),
            (f"{prefix}.bias", (channels,)),
            (f"{prefix}.running_mean", (channels,)),
            (f"{prefix}.running_var", (channels,)),
            (f"{prefix}.num_batches_tracked", ()),
        ]
    )


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
    blocks = [(idx, _batchnorm(f"conv_blocks.{idx}", ch)) for idx, ch in DETAIL_BN_BLOCKS]
    blocks += [(idx, _conv3x3(f"conv_blocks.{idx}", cin, cout)) for idx, cin, cout in DETAIL_CONV_BLOCKS]
    for _, layout in sorted(blocks, key=lambda block: block[0]):
        out.update(layout)
    return out


def _conv3x3(prefix: str, cin: int, cout: int) -> Dict[str, Shape]:
    return OrderedDict([(f"{prefix}.weight", (cout, cin, 3, 3)), (f"{prefix}.bias", (cout,))])


def checkpoint_layout() -> Dict[str, Dict[str, Shape]]:
    """`{'E_flame': {...}, 'E_detail': {...}, 'D_detail': {...}}` with every key and shape."""
    return OrderedDict(
        [
            ("E_flame", encoder_layout(N_FLAME_CODE)),
            ("E_detail", encoder_layout(N_DETAIL_CODE)),
            ("D_detail", detail_decoder_layout()),
        ]
    )


def is_buffer(key: str) -> bool:
    """BatchNorm running statistics and counters (buffers, not parameters)."""
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))

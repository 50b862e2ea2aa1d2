"""From a reconstructed batch to the files of one item, per `--save` kind (deca-spec §8.3 names).

Kinds: vis, obj, detail-obj, kpt, depth, mat, images, codes. DECA's demo flags map onto them (`--saveObj`
→ obj + detail-obj, `--saveDepth` → depth, …).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from decaenv.errors import InputError
from decaenv.runtime import writers
from decaenv.runtime.config import CODE_KEYS
from decaenv.runtime.item_meshes import _np, item_meshes
from decaenv.runtime.save_kinds import EXTRA_KINDS, SAVE_KINDS, expected_files, parse_save  # noqa: F401
from decaenv.runtime.vis import item_visdict, tensor2image, visualize_grid

CODES_SCHEMA = "decaenv-codes-1"
Files = Dict[str, Tuple[bool, Callable[[Path], None]]]


@dataclass
class ItemContext:
    """What the exporter knows about one item besides the tensors.

    Attributes:
        name, source, frame: the item. tform: (3, 3) crop matrix P. original_size: (h, w). crop_source:
        where the crop box came from. box: the face box used.
    """

    name: str
    source: str
    frame: Optional[int]
    tform: np.ndarray
    original_size: Tuple[int, int]
    crop_source: str
    box: Optional[Tuple[float, float, float, float]]


def write_deca_obj(deca, filename: str, opdict: Mapping, index: int = 0) -> None:
    """DECA's `save_obj(filename, opdict)`: coarse textured mesh and the dense detail mesh next to it."""
    path = Path(filename)
    name = path.stem
    meshes = item_meshes(deca, opdict, index)
    files = writers.obj_files(name, **meshes["coarse"])
    files[f"{name}_detail.obj"] = writers.text_writer(writers.detail_obj_text(*meshes["detail"]))
    outputs = writers.OutputSet(path.parent, "")  # files beside `filename`, not in a sub-folder
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for file_name, writer in files.items():
            outputs.write(path.parent / file_name, writer)
        outputs.commit()
    except OSError as exc:
        outputs.discard()
        raise InputError(f"cannot write {path}: {exc.strerror or exc}", path=path) from exc


def mat_arrays(opdict: Mapping[str, torch.Tensor], index: int) -> Dict[str, np.ndarray]:
    """DECA's `.mat` content for one item: `{key: opdict[key][i]}` for DECA's keys present (float32)."""
    return {k: _np(opdict[k][index]) for k in writers.MAT_KEYS if k in opdict}


def batch_codes(codedict: Mapping[str, torch.Tensor]) -> Dict[str, np.ndarray]:
    """A batch's codes as float32 numpy arrays (one transfer per key; `codes_arrays` takes them as they are)."""
    return {k: _np(codedict[k]) for k in CODE_KEYS if k in codedict}


def codes_arrays(
    codedict: Mapping[str, Union[torch.Tensor, np.ndarray]], index: int, ctx: ItemContext
) -> Dict[str, np.ndarray]:
    """Every FLAME/DECA parameter of one item, as the `_codes.npz` arrays (and the table's codes); `codedict`
    holds the batch's tensors, or `batch_codes` of them."""
    arrays = {
        k: (v[index] if isinstance(v, np.ndarray) else _np(v[index]))
        for k in CODE_KEYS
        if (v := codedict.get(k)) is not None
    }
    pose = arrays["pose"]
    arrays.update(
        global_pose=pose[:3],
        jaw_pose=pose[3:6],
        neck_pose=np.zeros(3, np.float32),
        eye_pose=np.zeros(6, np.float32),
        full_pose=np.concatenate([pose[:3], np.zeros(3, np.float32), pose[3:6], np.zeros(6, np.float32)]),
        tform=np.asarray(ctx.tform, dtype=np.float64),
        original_size=np.asarray(ctx.original_size, np.int64),
    )
    return arrays


def codes_content(
    codedict: Mapping[str, torch.Tensor], index: int, ctx: ItemContext
) -> Tuple[Dict[str, np.ndarray], dict]:
    """Every FLAME/DECA parameter of one item: the npz arrays and the JSON document."""
    arrays = codes_arrays(codedict, index, ctx)
    meta = {
        "schema": CODES_SCHEMA,
        "name": ctx.name,
        "source": ctx.source,
        "frame": ctx.frame,
        "crop": {
            "source": ctx.crop_source,
            "box": list(ctx.box) if ctx.box else None,
            "tform_original_to_crop": np.asarray(ctx.tform).tolist(),
            "original_size": list(ctx.original_size),
        },
        "layout": {
            "shape": "FLAME identity (first 100 of 300)",
            "exp": "FLAME expression (first 50 of 100)",
            "pose": "[global axis-angle (3), jaw axis-angle (3)], radians",
            "full_pose": "FLAME joints [global, neck=0, jaw, left eye=0, right eye=0], axis-angle",
            "cam": "[scale, tx, ty] orthographic: x_img = s (x + tx), y_img = -s (y + ty)",
            "light": "9 SH bands x RGB",
            "tex": "albedo PCA coefficients",
            "detail": "E_detail code",
        },
    }
    meta["codes"] = {k: np.asarray(v).tolist() for k, v in arrays.items() if k not in ("tform", "original_size")}
    return arrays, meta


def item_files(
    deca,
    kinds: Sequence[str],
    codedict,
    opdict,
    visdict,
    orig_visdict: Optional[dict],
    depth: Optional[torch.Tensor],
    index: int,
    ctx: ItemContext,
) -> Files:
    """Every file of one item for the requested kinds: {relative name: (inside `<name>/`?, writer)}."""
    name = ctx.name
    files: Files = {}
    if "kpt" in kinds:
        files[f"{name}_kpt2d.txt"] = (True, writers.text_writer(writers.kpt_text(_np(opdict["landmarks2d"][index]))))
        files[f"{name}_kpt3d.txt"] = (True, writers.text_writer(writers.kpt_text(_np(opdict["landmarks3d"][index]))))
    if "depth" in kinds and depth is not None:
        files[f"{name}_depth.jpg"] = (True, writers.image_writer(tensor2image(depth[index].expand(3, -1, -1))))
    if "obj" in kinds or "detail-obj" in kinds:
        meshes = item_meshes(deca, opdict, index)
        if "obj" in kinds:
            for rel, writer in writers.obj_files(name, **meshes["coarse"]).items():
                files[rel] = (True, writer)
        if "detail-obj" in kinds:
            files[f"{name}_detail.obj"] = (True, writers.text_writer(writers.detail_obj_text(*meshes["detail"])))
    if "mat" in kinds:
        files[f"{name}.mat"] = (True, writers.mat_writer(mat_arrays(opdict, index)))
    if "codes" in kinds:
        arrays, meta = codes_content(codedict, index, ctx)
        files[f"{name}_codes.npz"] = (True, writers.npz_writer(arrays))
        files[f"{name}_codes.json"] = (True, writers.json_writer(meta))
    if any(k in kinds for k in EXTRA_KINDS):
        from decaenv.runtime.mesh_kinds import extra_item_files

        files.update(extra_item_files(deca, kinds, opdict, index, name))
    panels = item_visdict(visdict, index) if visdict is not None else {}
    if "depth" in kinds and depth is not None:
        panels["depth_images"] = depth[index : index + 1].expand(-1, 3, -1, -1)
    if "vis" in kinds:
        files[f"{name}_vis.jpg"] = (False, writers.image_writer(visualize_grid(panels)))
        if orig_visdict is not None:
            files[f"{name}_vis_original_size.jpg"] = (False, writers.image_writer(visualize_grid(orig_visdict)))
    if "images" in kinds:
        for key in writers.IMAGE_KEYS:
            if key in panels:
                files[f"{name}_{key}.jpg"] = (True, writers.image_writer(tensor2image(panels[key][0])))
            if orig_visdict is not None and key in orig_visdict:
                files[f"orig_{name}_{key}.jpg"] = (True, writers.image_writer(tensor2image(orig_visdict[key][0])))
    return files

"""Read DECA's output files back and check them (used by the self-test and the end-to-end tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from decaenv.errors import DecaenvError
from decaenv.runtime.writers import IMAGE_KEYS, MAT_KEYS

#: Shapes of DECA's `.mat` entries for one item (deca-spec §8.3).
MAT_SHAPES = {
    "verts": (5023, 3),
    "trans_verts": (5023, 3),
    "landmarks2d": (68, 2),
    "landmarks3d": (68, 4),
    "landmarks3d_world": (68, 3),
    "grid": (224, 224, 2),
    "rendered_images": (3, 224, 224),
    "alpha_images": (1, 224, 224),
    "normal_images": (3, 224, 224),
    "albedo": (3, 256, 256),
    "uv_texture": (3, 256, 256),
    "normals": (5023, 3),
    "uv_detail_normals": (3, 256, 256),
    "displacement_map": (1, 256, 256),
    "uv_texture_gt": (3, 256, 256),
}


def _fail(message: str) -> None:
    raise DecaenvError(f"output check failed: {message}")


def _image(path: Path, size=None) -> tuple:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        expected = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
        if img.format != expected:
            _fail(f"{path.name} holds {img.format} data, expected {expected}")
        if size is not None and img.size != size:
            _fail(f"{path.name} is {img.size}, expected {size}")
        return img.size


def check_item(out_dir: Path, name: str, kinds: Sequence[str], n_vertices: int = 5023) -> Dict[str, str]:
    """Parse every file of one item for the given kinds; returns {kind: what was found}.

    Raises:
        DecaenvError: a file is missing, unreadable or of the wrong shape.
    """
    from decaenv.meshio import read_obj

    folder = Path(out_dir) / name
    found: Dict[str, str] = {}
    if "vis" in kinds:
        w, h = _image(Path(out_dir) / f"{name}_vis.jpg")
        found["vis"] = f"{w}×{h} strip"
    if "obj" in kinds:
        mesh = read_obj(folder / f"{name}.obj")
        if mesh.v.shape != (n_vertices, 3) or len(mesh.ft) != len(mesh.f):
            _fail(f"{name}.obj has {mesh.v.shape[0]} vertices / {len(mesh.ft)} uv faces")
        mtl = (folder / f"{name}.mtl").read_text()
        if f"map_Kd {name}.png" not in mtl:
            _fail(f"{name}.mtl does not reference {name}.png")
        _image(folder / f"{name}.png", (256, 256))
        _image(folder / f"{name}_normals.png", (256, 256))
        found["obj"] = f"{mesh.v.shape[0]} v, {mesh.f.shape[0]} f, textured"
    if "detail-obj" in kinds:
        dense = read_obj(folder / f"{name}_detail.obj")
        found["detail-obj"] = f"{dense.v.shape[0]} v, {dense.f.shape[0]} f"
    if "kpt" in kinds:
        k2, k3 = np.loadtxt(folder / f"{name}_kpt2d.txt"), np.loadtxt(folder / f"{name}_kpt3d.txt")
        if k2.shape != (68, 2) or k3.shape != (68, 4):
            _fail(f"landmark files hold {k2.shape} and {k3.shape}")
        found["kpt"] = "68×2 and 68×4"
    if "depth" in kinds:
        _image(folder / f"{name}_depth.jpg", (224, 224))
        found["depth"] = "224×224"
    if "mat" in kinds:
        from scipy.io import loadmat

        mat = {k: v for k, v in loadmat(str(folder / f"{name}.mat")).items() if not k.startswith("__")}
        wrong = [k for k, v in mat.items() if k in MAT_SHAPES and tuple(v.shape) != MAT_SHAPES[k]]
        missing = [k for k in MAT_KEYS if k not in mat and k != "albedo"]
        if wrong or missing:
            _fail(f"{name}.mat: wrong shapes {wrong}, missing {missing}")
        found["mat"] = f"{len(mat)} arrays"
    if "codes" in kinds:
        with np.load(folder / f"{name}_codes.npz", allow_pickle=False) as codes:
            sizes = {k: codes[k].size for k in ("shape", "exp", "pose", "cam", "tex", "light", "detail")}
        meta = json.loads((folder / f"{name}_codes.json").read_text(encoding="utf-8"))
        if sizes != {"shape": 100, "exp": 50, "pose": 6, "cam": 3, "tex": 50, "light": 27, "detail": 128}:
            _fail(f"codes have sizes {sizes}")
        if not np.allclose(meta["codes"]["shape"], np.load(folder / f"{name}_codes.npz")["shape"]):
            _fail("codes .json and .npz disagree")
        found["codes"] = "npz + json"
    if "images" in kinds:
        present = [k for k in IMAGE_KEYS if (folder / f"{name}_{k}.jpg").is_file()]
        for key in present:
            _image(folder / f"{name}_{key}.jpg", (224, 224))
        if "inputs" not in present:
            _fail(f"{name}_inputs.jpg is missing")
        found["images"] = f"{len(present)} panels"
    return found

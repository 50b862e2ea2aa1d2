"""Write a complete synthetic DECA data dir (deterministic from a seed)."""

from __future__ import annotations

import io
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional

import numpy as np

from decaenv.deca_layout import PUBLIC_FILES
from decaenv.errors import DataError
from decaenv.uvlayout import build_dense_template, rasterize_uv

#: DECA's public files, taken verbatim from a folder that has them (`public_dir`).
UV_SIZE = 256


@dataclass
class AssetReport:
    """What `make_assets` wrote.

    Attributes:
        data_dir: the folder. files: file names written, in order. topology: "procedural" or the folder
        the public files came from. seconds: wall time.
    """

    data_dir: Path
    topology: str
    files: List[str] = field(default_factory=list)
    seconds: float = 0.0


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_bytes(data: bytes) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        p.write_bytes(data)

    return write


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _object_npy_bytes(obj: Mapping[str, object]) -> bytes:
    """An `.npy` holding a pickled dict, written like numpy 1.x `np.save` (protocol 3)."""
    from numpy.lib import format as npformat

    from decaenv.loaders.legacy_pickle import dumps

    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    holder = np.empty((), dtype=object)
    holder[()] = obj
    buf.write(dumps(holder, protocol=3))
    return buf.getvalue()


def _image_writer(pixels: np.ndarray, fmt: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        from PIL import Image

        image = Image.fromarray(pixels)
        if fmt == "JPEG":
            image.save(path, format="JPEG", quality=95)
        else:
            image.save(path, format="PNG")

    return write


def _mask_rgba(mask: np.ndarray) -> np.ndarray:
    value = np.clip(np.round(mask * 255), 0, 255).astype(np.uint8)
    return np.stack([value, value, value, np.full_like(value, 255)], -1)


def make_assets(
    out_dir: os.PathLike, *, seed: int = 0, public_dir: Optional[os.PathLike] = None, with_optimizer: bool = True
) -> AssetReport:
    """Write a DECA data dir with synthetic weights in the official formats.

    Args:
        out_dir: target folder (created; existing files of the same names are replaced atomically).
        seed: everything is a deterministic function of it (same seed → identical bytes).
        public_dir: a folder holding DECA's public topology files (`PUBLIC_FILES`): they are copied and
            FLAME is built on their topology. Without it a procedural head with FLAME's counts is used.
        with_optimizer: include the `opt` entry in `deca_model.tar` (≈433 MB in all instead of ≈214 MB).

    Raises:
        DataError: `public_dir` lacks one of the public files.
    """
    from decaenv.synthetic import checkpoint, flame, topology

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0])
    writes: Dict[str, Callable[[Path], None]] = {}
    if public_dir is not None:
        public = Path(public_dir)
        missing = [name for name in PUBLIC_FILES if not (public / name).is_file()]
        if missing:
            raise DataError(
                f"{public} lacks DECA's public files: {', '.join(missing)}",
                hint="point it at a folder holding DECA's data/ files",
            )
        topo = topology.from_obj(public / "head_template.obj")
        for name in PUBLIC_FILES:
            writes[name] = (lambda src: lambda p: shutil.copyfile(src, p))(public / name)
    else:
        topo = topology.procedural_head()
    arrays = flame.flame_arrays(topo, rng)
    writes["generic_model.pkl"] = _write_bytes(flame.flame_pickle_bytes(arrays))
    face, bary = rasterize_uv(topo.vt, topo.ft, UV_SIZE)
    writes["texture_data_256.npy"] = _write_bytes(_object_npy_bytes(build_dense_template(face, bary, topo.f)))
    if public_dir is None:
        _procedural_public_files(writes, topo, face, bary, arrays, rng)
    writes["deca_model.tar"] = lambda p: checkpoint.write_checkpoint(p, seed, with_optimizer)
    report = AssetReport(data_dir=out.resolve(), topology=topo.source)
    for name, write in writes.items():
        _atomic_write(out / name, write)
        report.files.append(name)
    report.seconds = time.perf_counter() - start
    return report


def _procedural_public_files(writes, topo, face, bary, arrays, rng) -> None:
    from decaenv.meshio import format_obj
    from decaenv.synthetic import flame, landmarks, uvmaps

    obj = format_obj(
        topo.v + np.array([0.0, 1.47, 0.0]),
        topo.f,
        topo.vt,
        topo.ft,
        mtllib="template.mtl",
        header="decaenv synthetic head (procedural, FLAME-sized topology)",
    )
    writes["head_template.obj"] = _write_bytes(obj.encode("ascii"))
    writes["landmark_embedding.npy"] = _write_bytes(_object_npy_bytes(landmarks.landmark_embedding(topo)))
    labels = flame.connected_components(len(topo.v), topo.f)
    sizes = np.bincount(labels)
    eye_vertices = np.flatnonzero(labels != np.argmax(sizes))
    eye_faces = np.flatnonzero(np.isin(topo.f[:, 0], eye_vertices))
    pts = uvmaps.surface_points(topo, face, bary)
    face_eye, face_only = uvmaps.face_masks(topo, face, pts, eye_faces)
    writes["uv_face_eye_mask.png"] = _image_writer(_mask_rgba(face_eye), "PNG")
    writes["uv_face_mask.png"] = _image_writer(_mask_rgba(face_only), "PNG")
    writes["fixed_displacement_256.npy"] = _write_bytes(_npy_bytes(uvmaps.fixed_displacement(face_eye, rng)))
    face512, bary512 = rasterize_uv(topo.vt, topo.ft, 512)
    pts512 = uvmaps.surface_points(topo, face512, bary512)
    writes["mean_texture.jpg"] = _image_writer(uvmaps.mean_texture(topo, pts512, face512), "JPEG")

"""The `--save` kinds beyond DECA's for one item: `detail-uv` (the dense `_detail.obj` with texture
coordinates and a material, so it is textured like the coarse mesh), `glb` (glTF binary, texture embedded)
and `ply` (binary PLY with vertex colours).

Files: detail-uv → `<name>_detail.obj` (replaces DECA's untextured one), `<name>_detail.mtl`, `<name>.png`;
glb → `<name>.glb` (coarse, textured, normals) and `<name>_detail.glb` (dense, textured and vertex colours);
ply → `<name>.ply` (coarse, colours sampled from the texture, normals) and `<name>_detail.ply` (dense).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Mapping, Sequence, Tuple

import numpy as np

Files = Dict[str, Tuple[bool, Callable[[Path], None]]]


def bytes_writer(data: bytes) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return write


def texel_uvs(xs: np.ndarray, ys: np.ndarray, size: int) -> np.ndarray:
    """UVs (OBJ convention: u right, v up, [0, 1]) of texel centres (x, y) of a size×size map whose row 0 is
    the top of the PNG. Returns (N, 2) float32."""
    u = (np.asarray(xs, np.float64) + 0.5) / size
    v = 1.0 - (np.asarray(ys, np.float64) + 0.5) / size
    return np.stack([u, v], 1).astype(np.float32)


def dense_uvs(dense_template: Mapping, size: int) -> np.ndarray:
    """The UV of every dense detail vertex: the centre of the texel it was made from (texel k read through
    `valid_pixel_ids[k]`, as `mesh.upsample_mesh` reads its colour and displacement). (N, 2)."""
    from decaenv.uvlayout import texel_rows_cols

    ys, xs = texel_rows_cols(dense_template)
    return texel_uvs(xs, ys, size)


def sample_texture(texture: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """Nearest texel colour at each UV (OBJ convention). texture (S, S, 3) uint8 → (N, 3) uint8."""
    h, w = texture.shape[:2]
    x = np.clip(np.floor(uvs[:, 0] * w), 0, w - 1).astype(np.int64)
    y = np.clip(np.floor((1.0 - uvs[:, 1]) * h), 0, h - 1).astype(np.int64)
    return texture[y, x]


def detail_uv_obj_text(name: str, vertices: np.ndarray, colours: np.ndarray, uvs: np.ndarray, faces: np.ndarray) -> str:
    """DECA's dense OBJ (`v x y z r g b`) plus `mtllib`, `vt` (one per vertex) and `f a/a b/b c/c` (1-based)."""
    from decaenv.runtime.writers import _floats, _interleave

    coords = np.asarray(vertices, dtype=np.float64)
    rgb = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    columns = [coords[:, k].tolist() for k in range(3)] + [rgb[:, k].tolist() for k in range(3)]
    vt = _floats(np.asarray(uvs, np.float32))
    f1 = np.asarray(faces, dtype=np.int64) + 1
    corners = [f1[:, k // 2].tolist() for k in range(6)]
    return (
        f"mtllib {name}_detail.mtl\n"
        + ("v %r %r %r %d %d %d\n" * len(coords)) % _interleave(columns, 6)
        + ("vt %r %r\n" * (len(vt) // 2)) % tuple(vt)
        + "usemtl FaceTexture\n"
        + ("f %d/%d %d/%d %d/%d\n" * len(f1)) % _interleave(corners, 6)
    )


def extra_item_files(deca, kinds: Sequence[str], opdict, index: int, name: str) -> Files:
    """The files of the extra mesh kinds of one item: {relative name: (inside `<name>/`?, writer)}."""
    from decaenv.runtime import writers
    from decaenv.runtime.gltf import glb_bytes, split_by_uv
    from decaenv.runtime.item_meshes import _np, item_meshes
    from decaenv.runtime.ply import ply_bytes

    wanted = [k for k in ("detail-uv", "glb", "ply") if k in kinds]
    if not wanted:
        return {}
    meshes = item_meshes(deca, opdict, index)
    coarse = meshes["coarse"]
    dense_v, dense_rgb, dense_f = meshes["detail"]
    uvs = dense_uvs(deca.dense_template, deca.uv_size)
    normals = _np(opdict["normals"][index])
    files: Files = {}
    if "detail-uv" in kinds:
        text = detail_uv_obj_text(name, dense_v, dense_rgb, uvs, dense_f)
        files[f"{name}_detail.obj"] = (True, writers.text_writer(text))
        files[f"{name}_detail.mtl"] = (True, writers.text_writer(f"newmtl FaceTexture\nmap_Kd {name}.png\n"))
        files[f"{name}.png"] = (True, writers.image_writer(coarse["texture"]))
    if "glb" in kinds:
        vid, uid, tris = split_by_uv(coarse["faces"], coarse["uvfaces"])
        files[f"{name}.glb"] = (
            True,
            bytes_writer(
                glb_bytes(
                    coarse["vertices"][vid],
                    tris,
                    normals=normals[vid],
                    uvs=coarse["uvcoords"][uid],
                    texture=coarse["texture"],
                    name=name,
                )
            ),
        )
        files[f"{name}_detail.glb"] = (
            True,
            bytes_writer(
                glb_bytes(
                    dense_v, dense_f, uvs=uvs, colours=dense_rgb, texture=coarse["texture"], name=f"{name}_detail"
                )
            ),
        )
    if "ply" in kinds:
        first_uv = np.zeros(len(coarse["vertices"]), np.int64)
        first_uv[np.asarray(coarse["faces"]).reshape(-1)] = np.asarray(coarse["uvfaces"]).reshape(-1)
        colours = sample_texture(coarse["texture"], coarse["uvcoords"][first_uv])
        files[f"{name}.ply"] = (True, bytes_writer(ply_bytes(coarse["vertices"], coarse["faces"], colours, normals)))
        files[f"{name}_detail.ply"] = (True, bytes_writer(ply_bytes(dense_v, dense_f, dense_rgb)))
    return files


def extra_expected(kinds: Sequence[str], name: str) -> Dict[str, bool]:
    """The files `extra_item_files` writes (for --skip-existing)."""
    out: Dict[str, bool] = {}
    if "detail-uv" in kinds:
        out.update({f"{name}_detail.obj": True, f"{name}_detail.mtl": True, f"{name}.png": True})
    if "glb" in kinds:
        out.update({f"{name}.glb": True, f"{name}_detail.glb": True})
    if "ply" in kinds:
        out.update({f"{name}.ply": True, f"{name}_detail.ply": True})
    return out

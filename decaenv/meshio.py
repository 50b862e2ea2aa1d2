"""Wavefront OBJ reading and writing for triangle meshes with UVs (numpy only).

DECA's `head_template.obj` holds `v`, `vt` and `f v/vt` triangles and references a `template.mtl` that
is not shipped (harmless; decaenv never opens it, so no "Mtl file does not exist" warning either).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from decaenv.errors import DataError


@dataclass(frozen=True)
class ObjMesh:
    """A triangle mesh as read from an OBJ file (0-based indices, file order).

    Attributes:
        v: (V, 3) float64 vertex positions.
        f: (F, 3) int64 vertex indices per triangle.
        vt: (T, 2) float64 texture coordinates, or an empty (0, 2) array.
        ft: (F, 3) int64 texture-coordinate indices per triangle, or an empty (0, 3) array.
    """

    v: np.ndarray
    f: np.ndarray
    vt: np.ndarray
    ft: np.ndarray


def _parse_face_token(token: str):
    parts = token.split("/")
    vi = int(parts[0])
    ti = int(parts[1]) if len(parts) > 1 and parts[1] else None
    return vi, ti


def read_obj(path: os.PathLike) -> ObjMesh:
    """Read a triangle OBJ (`v`, `vt`, `f v`, `f v/vt`, `f v/vt/vn`); polygons are rejected.

    Raises:
        DataError: unreadable file, a non-triangle face, or an index out of range.
    """
    path = Path(path)
    v, vt, f, ft = [], [], [], []
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.startswith("v "):
                    v.append([float(x) for x in line.split()[1:4]])
                elif line.startswith("vt "):
                    vt.append([float(x) for x in line.split()[1:3]])
                elif line.startswith("f "):
                    tokens = line.split()[1:]
                    if len(tokens) != 3:
                        raise DataError(
                            f"{path}:{lineno}: face with {len(tokens)} corners; only triangles are supported",
                            hint="triangulate the mesh",
                        )
                    parsed = [_parse_face_token(t) for t in tokens]
                    f.append([p[0] - 1 for p in parsed])
                    if all(p[1] is not None for p in parsed):
                        ft.append([p[1] - 1 for p in parsed])
    except OSError as exc:
        raise DataError(f"cannot read OBJ file {path}: {exc.strerror or exc}", path=path) from exc
    except ValueError as exc:
        raise DataError(f"{path} is not a valid OBJ file ({exc})", hint="re-download it", path=path) from exc
    mesh = ObjMesh(
        v=np.asarray(v, dtype=np.float64).reshape(-1, 3),
        f=np.asarray(f, dtype=np.int64).reshape(-1, 3),
        vt=np.asarray(vt, dtype=np.float64).reshape(-1, 2),
        ft=np.asarray(ft, dtype=np.int64).reshape(-1, 3) if len(ft) == len(f) else np.zeros((0, 3), np.int64),
    )
    _validate(mesh, path)
    return mesh


def _validate(mesh: ObjMesh, path: Path) -> None:
    if len(mesh.v) == 0 or len(mesh.f) == 0:
        raise DataError(f"{path} holds no vertices or no faces", hint="re-download it", path=path)
    if mesh.f.min() < 0 or mesh.f.max() >= len(mesh.v):
        raise DataError(f"{path}: face index out of range", hint="re-download it", path=path)
    if len(mesh.ft) and (mesh.ft.min() < 0 or mesh.ft.max() >= len(mesh.vt)):
        raise DataError(f"{path}: texture index out of range", hint="re-download it", path=path)


def format_obj(
    v: np.ndarray,
    f: np.ndarray,
    vt: Optional[np.ndarray] = None,
    ft: Optional[np.ndarray] = None,
    *,
    mtllib: Optional[str] = None,
    material: Optional[str] = None,
    header: str = "",
) -> str:
    """OBJ text for a triangle mesh (1-based indices). `vt`/`ft` are optional.

    Args:
        v: (V, 3) positions. f: (F, 3) 0-based vertex indices.
        vt: (T, 2) texture coordinates. ft: (F, 3) 0-based texture indices.
    """
    lines = [f"# {line}" for line in header.splitlines()]
    if mtllib:
        lines += [f"mtllib {mtllib}", ""]
    lines += [f"v {x:.8g} {y:.8g} {z:.8g}" for x, y, z in np.asarray(v, dtype=np.float64)]
    with_uv = vt is not None and ft is not None and len(ft) == len(f)
    if with_uv:
        lines += [f"vt {a:.8g} {b:.8g}" for a, b in np.asarray(vt, dtype=np.float64)]
    if material:
        lines.append(f"usemtl {material}")
    f1 = np.asarray(f, dtype=np.int64) + 1
    if with_uv:
        t1 = np.asarray(ft, dtype=np.int64) + 1
        lines += [f"f {a}/{ta} {b}/{tb} {c}/{tc}" for (a, b, c), (ta, tb, tc) in zip(f1, t1)]
    else:
        lines += [f"f {a} {b} {c}" for a, b, c in f1]
    return "\n".join(lines) + "\n"

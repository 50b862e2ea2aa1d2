"""Binary little-endian PLY for a triangle mesh with vertex colours (and normals), written by hand: a text
header and two packed arrays (numpy structured dtypes), as MeshLab, Blender and Open3D read it."""

from __future__ import annotations

from typing import Optional

import numpy as np


def ply_bytes(positions: np.ndarray, triangles: np.ndarray, colours: Optional[np.ndarray] = None,
              normals: Optional[np.ndarray] = None, comment: str = "decaenv") -> bytes:
    """The PLY file's bytes.

    Args:
        positions: (N, 3). triangles: (M, 3) 0-based. colours: (N, 3) uint8 RGB. normals: (N, 3).
    """
    positions = np.asarray(positions, dtype=np.float32)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if colours is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertices = np.empty(len(positions), dtype=fields)
    for k, axis in enumerate("xyz"):
        vertices[axis] = positions[:, k]
    if normals is not None:
        for k, axis in enumerate(("nx", "ny", "nz")):
            vertices[axis] = np.asarray(normals, np.float32)[:, k]
    if colours is not None:
        for k, channel in enumerate(("red", "green", "blue")):
            vertices[channel] = np.asarray(colours, np.uint8)[:, k]
    faces = np.empty(len(triangles), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    faces["n"] = 3
    faces["v"] = np.asarray(triangles, dtype=np.int32)
    kinds = {"<f4": "float", "u1": "uchar"}
    header = ["ply", "format binary_little_endian 1.0", f"comment {comment}", f"element vertex {len(vertices)}"]
    header += [f"property {kinds[t]} {n}" for n, t in fields]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header", ""]
    return "\n".join(header).encode("ascii") + vertices.tobytes() + faces.tobytes()

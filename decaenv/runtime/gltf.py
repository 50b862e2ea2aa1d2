"""glTF 2.0 binary (`.glb`) for one triangle mesh with its texture embedded, written by hand (the format is
one JSON chunk and one binary chunk; no library is needed for a single static mesh).

Layout: one scene → one node → one mesh → one primitive (triangles) with POSITION (float32, with min/max),
optional NORMAL, TEXCOORD_0 (glTF's v axis points down: v = 1 − v_obj), COLOR_0 (float32 RGB), uint32
indices, and one unlit-looking PBR material (metallic 0, roughness 1) whose base colour is the embedded PNG.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any, Dict, List, Optional

import numpy as np

GLB_MAGIC, GLB_VERSION = 0x46546C67, 2
CHUNK_JSON, CHUNK_BIN = 0x4E4F534A, 0x004E4942
FLOAT, UINT32 = 5126, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
LINEAR, CLAMP_TO_EDGE = 9729, 33071


def png_bytes(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 → PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _pad(data: bytes, filler: bytes = b"\x00") -> bytes:
    return data + filler * (-len(data) % 4)


class _Buffer:
    """The binary chunk being assembled: 4-byte aligned views and their accessors."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: List[Dict[str, int]] = []
        self.accessors: List[Dict[str, object]] = []

    def view(self, raw: bytes, target: Optional[int] = None) -> int:
        self.data += b"\x00" * (-len(self.data) % 4)
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(raw)}
        if target is not None:
            view["target"] = target
        self.data += raw
        self.views.append(view)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, bounds: bool = False) -> int:
        if kind == "SCALAR":
            values = np.ascontiguousarray(array, dtype=np.uint32).reshape(-1)
            entry = {"componentType": UINT32, "count": int(values.size), "type": "SCALAR"}
            entry["bufferView"] = self.view(values.tobytes(), ELEMENT_ARRAY_BUFFER)
        else:
            values = np.ascontiguousarray(array, dtype="<f4")
            entry = {"componentType": FLOAT, "count": int(values.shape[0]), "type": kind}
            entry["bufferView"] = self.view(values.tobytes(), ARRAY_BUFFER)
            if bounds:
                entry.update(min=values.min(0).astype(float).tolist(), max=values.max(0).astype(float).tolist())
        self.accessors.append(entry)
        return len(self.accessors) - 1


def glb_bytes(
    positions: np.ndarray,
    triangles: np.ndarray,
    *,
    normals: Optional[np.ndarray] = None,
    uvs: Optional[np.ndarray] = None,
    colours: Optional[np.ndarray] = None,
    texture: Optional[np.ndarray] = None,
    name: str = "face",
) -> bytes:
    """One textured mesh as a GLB file.

    Args:
        positions: (N, 3). triangles: (M, 3) 0-based. normals: (N, 3). uvs: (N, 2) in OBJ convention (v up).
        colours: (N, 3) uint8 vertex colours. texture: (H, W, 3) uint8 base colour (needs `uvs`).
    Returns:
        The file's bytes.
    """
    positions = np.asarray(positions, dtype=np.float32)
    buf = _Buffer()
    attributes = {"POSITION": buf.accessor(positions, "VEC3", bounds=True)}
    if normals is not None:
        attributes["NORMAL"] = buf.accessor(np.asarray(normals, np.float32), "VEC3")
    if uvs is not None:
        flipped = np.asarray(uvs, np.float32).copy()
        flipped[:, 1] = 1.0 - flipped[:, 1]
        attributes["TEXCOORD_0"] = buf.accessor(flipped, "VEC2")
    if colours is not None:
        attributes["COLOR_0"] = buf.accessor(np.asarray(colours, np.float32) / 255.0, "VEC3")
    primitive = {"attributes": attributes, "indices": buf.accessor(triangles, "SCALAR"), "mode": 4}
    doc = {
        "asset": {"version": "2.0", "generator": "decaenv"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"name": name, "primitives": [primitive]}],
    }
    material: Dict[str, Any] = {  # a glTF JSON object
        "name": f"{name}_material",
        "doubleSided": True,
        "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 1.0},
    }
    if texture is not None and uvs is not None:
        image_view = buf.view(png_bytes(texture))
        doc.update(
            images=[{"bufferView": image_view, "mimeType": "image/png"}],
            samplers=[{"magFilter": LINEAR, "minFilter": LINEAR, "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE}],
            textures=[{"sampler": 0, "source": 0}],
        )
        material["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
    doc["materials"] = [material]
    primitive["material"] = 0
    binary = _pad(bytes(buf.data))
    doc.update(buffers=[{"byteLength": len(binary)}], bufferViews=buf.views, accessors=buf.accessors)
    text = _pad(json.dumps(doc, separators=(",", ":")).encode("utf-8"), b" ")
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (
        struct.pack("<III", GLB_MAGIC, GLB_VERSION, total)
        + struct.pack("<II", len(text), CHUNK_JSON)
        + text
        + struct.pack("<II", len(binary), CHUNK_BIN)
        + binary
    )


def split_by_uv(faces: np.ndarray, uvfaces: np.ndarray):
    """One vertex per distinct (vertex, uv) corner pair, as glTF needs (OBJ indexes them separately).

    Returns:
        (vertex index (K,), uv index (K,), triangles (M, 3) into the K new vertices).
    """
    pairs = np.stack([np.asarray(faces).reshape(-1), np.asarray(uvfaces).reshape(-1)], 1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    return unique[:, 0], unique[:, 1], inverse.reshape(-1, 3)

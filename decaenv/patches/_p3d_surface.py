"""The small part of pytorch3d's API that DECA and its forks call, implemented on decaenv's rasterizer.

    Meshes(verts, faces)                       pytorch3d.structures  (lists or padded (N, V, 3) / (N, F, 3))
    rasterize_meshes(meshes, image_size, ...)  pytorch3d.renderer.mesh  (faces_per_pixel=1, blur_radius=0)
    load_obj(f)                                pytorch3d.io  -> verts, Faces(...), Properties(...)

Conventions are pytorch3d's: NDC with +X left, +Y up, the shorter image side spanning [-1, 1]; `pix_to_face`
holds *packed* face indices (face index + the mesh's offset), -1 where empty, and `zbuf`, `bary_coords` and
`dists` are -1 there. Options this surface does not implement (several faces per pixel, blur, perspective
correction, back-face culling, z clipping) raise a ValueError that says so instead of computing something
else. Everything imports torch lazily.
"""

from __future__ import annotations

import os
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

ImageSize = Union[int, Sequence[int]]


class Meshes:
    """A batch of triangle meshes (pytorch3d.structures.Meshes, geometry only).

    Args:
        verts: list of (V_i, 3) float tensors, or a padded (N, V, 3) tensor.
        faces: list of (F_i, 3) int tensors, or a padded (N, F, 3) tensor (rows holding -1 are padding).
        textures: accepted and kept (not used by the rasterizer).
    """

    def __init__(self, verts: Any, faces: Any, textures: Any = None, **_: Any):
        import torch

        if isinstance(verts, torch.Tensor):
            verts = list(verts) if verts.dim() == 3 else None
        if isinstance(faces, torch.Tensor):
            faces = [f[(f > -1).all(1)] for f in faces] if faces.dim() == 3 else None
        if verts is None or faces is None or len(verts) != len(faces):
            raise ValueError("Meshes: verts and faces must be lists of equal length or (N, V, 3) / (N, F, 3) tensors")
        self._verts = list(verts)
        self._faces = [f.to(torch.int64) for f in faces]
        self.textures = textures
        for v, f in zip(self._verts, self._faces):
            if v.dim() != 2 or v.shape[1] != 3 or f.dim() != 2 or f.shape[1] != 3:
                raise ValueError(
                    f"Meshes: each mesh needs (V, 3) verts and (F, 3) faces, got {tuple(v.shape)} and {tuple(f.shape)}"
                )
            if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
                raise ValueError(f"Meshes: face indices must lie in [0, {v.shape[0]})")

    def __len__(self) -> int:
        return len(self._verts)

    @property
    def device(self) -> Any:
        return self._verts[0].device if self._verts else None

    def isempty(self) -> bool:
        return len(self) == 0 or all(f.shape[0] == 0 for f in self._faces)

    def verts_list(self) -> List[Any]:
        return list(self._verts)

    def faces_list(self) -> List[Any]:
        return list(self._faces)

    def num_verts_per_mesh(self) -> Any:
        import torch

        return torch.tensor([v.shape[0] for v in self._verts], device=self.device)

    def num_faces_per_mesh(self) -> Any:
        import torch

        return torch.tensor([f.shape[0] for f in self._faces], device=self.device)

    def mesh_to_faces_packed_first_idx(self) -> Any:
        counts = self.num_faces_per_mesh()
        return counts.cumsum(0) - counts

    def verts_packed(self) -> Any:
        import torch

        return torch.cat(self._verts, 0)

    def faces_packed(self) -> Any:
        """(sum F_i, 3) faces indexing `verts_packed()`."""
        import torch

        offsets, total = [], 0
        for v in self._verts:
            offsets.append(total)
            total += v.shape[0]
        return torch.cat([f + o for f, o in zip(self._faces, offsets)], 0)

    def verts_padded(self) -> Any:
        return _pad(self._verts, 0.0)

    def faces_padded(self) -> Any:
        return _pad(self._faces, -1)


def _pad(tensors: List[Any], value: float) -> Any:
    import torch

    size = max((t.shape[0] for t in tensors), default=0)
    out = tensors[0].new_full((len(tensors), size, tensors[0].shape[1]), value)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    return out if len(tensors) else torch.zeros(0, 0, 3)


def _unsupported(name: str, value: Any, default: Any) -> None:
    if value != default:
        raise ValueError(
            f"rasterize_meshes: {name}={value!r} is not supported by decaenv's pytorch3d stand-in "
            f"(only {name}={default!r}); install pytorch3d for it"
        )


def _size(image_size: ImageSize) -> Tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = (int(s) for s in image_size)
    return h, w


def rasterize_meshes(
    meshes: Meshes,
    image_size: ImageSize = 256,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 8,
    bin_size: Optional[int] = None,
    max_faces_per_bin: Optional[int] = None,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: Optional[float] = None,
    cull_to_frustum: bool = False,
):
    """pytorch3d's `rasterize_meshes` for one face per pixel without blur (bin sizes are ignored).

    Returns:
        pix_to_face (N, H, W, 1) int64 packed face index, zbuf (N, H, W, 1), bary_coords (N, H, W, 1, 3),
        dists (N, H, W, 1): minus the squared NDC distance from the pixel centre to the face's nearest edge;
        all -1 where no face covers the pixel.
    """
    import torch

    from decaenv.patches.standard_rasterizer import _backend_for
    from decaenv.runtime.rasterizer.api import rasterize

    _unsupported("faces_per_pixel", faces_per_pixel, 1)
    _unsupported("blur_radius", float(blur_radius), 0.0)
    _unsupported("perspective_correct", bool(perspective_correct), False)
    _unsupported("cull_backfaces", bool(cull_backfaces), False)
    _unsupported("z_clip_value", z_clip_value, None)
    h, w = _size(image_size)
    verts = meshes.verts_padded().detach().to(torch.float32)
    faces = meshes.faces_padded()
    fv = _face_vertices(verts, faces)  # (N, F, 3, 3), padding faces NaN (never drawn)
    fv[..., :2] = -fv[..., :2]  # pytorch3d's +X left / +Y up -> decaenv's x right / y down
    if w > h:
        fv[..., 0] = fv[..., 0] * h / w  # decaenv takes [-1, 1] across each side and scales the long one itself
    elif h > w:
        fv[..., 1] = fv[..., 1] * w / h
    frags = rasterize(fv, h, w, backend=_backend_for(fv.device))
    empty = ~frags.mask
    offsets = meshes.mesh_to_faces_packed_first_idx().to(frags.pix_to_face.device)
    pix_to_face = torch.where(empty, torch.full_like(frags.pix_to_face, -1), frags.pix_to_face + offsets[:, None, None])
    bary = frags.bary.masked_fill(empty[..., None], -1.0)
    zbuf = frags.zbuf.masked_fill(empty, -1.0)
    dists = _edge_dists(fv, frags.pix_to_face, h, w).masked_fill(empty, -1.0)
    return pix_to_face[..., None], zbuf[..., None], bary[..., None, :], dists[..., None]


def _face_vertices(verts: Any, faces: Any) -> Any:
    import torch

    n, f = faces.shape[:2]
    pad = faces < 0
    index = faces.clamp(min=0).reshape(n, f * 3, 1).expand(-1, -1, 3)
    fv = verts.gather(1, index).reshape(n, f, 3, 3).clone()
    return torch.where(pad[..., None], torch.full_like(fv, float("nan")), fv)


def _edge_dists(fv: Any, pix_to_face: Any, h: int, w: int) -> Any:
    """-(squared distance, in pytorch3d's NDC, from each covered pixel centre to the nearest edge of its face)."""
    import torch

    from decaenv.runtime.rasterizer.api import pixel_centres

    n = fv.shape[0]
    xs, ys = pixel_centres(h, w, fv.device)  # decaenv's frame; pytorch3d's is mirrored (same distances)
    scale = torch.tensor([max(w / h, 1.0), max(h / w, 1.0)], device=fv.device)
    tri = fv[..., :2] * scale  # back in the scaled frame that xs, ys live in
    index = pix_to_face.clamp(min=0).reshape(n, -1, 1).expand(-1, -1, 6)
    corners = tri.reshape(n, -1, 6).gather(1, index).reshape(n, h, w, 3, 2)
    p = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1)[None, :, :, None, :]  # (1, H, W, 1, 2)
    a, b = corners, corners.roll(-1, dims=3)
    ab = b - a
    t = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)).clamp(0, 1)
    closest = a + t[..., None] * ab
    return -((p - closest) ** 2).sum(-1).min(-1).values


class Faces(NamedTuple):
    """pytorch3d.io's per-face indices: (F, 3) int64 each; -1 where a face gives no uv / normal index."""

    verts_idx: Any
    normals_idx: Any
    textures_idx: Any
    materials_idx: Any


class Properties(NamedTuple):
    """pytorch3d.io's auxiliary data (materials and texture images are not read: None)."""

    normals: Any
    verts_uvs: Any
    material_colors: Any
    texture_images: Any
    texture_atlas: Any


def load_obj(
    f: Any,
    load_textures: bool = True,
    create_texture_atlas: bool = False,
    texture_atlas_size: int = 4,
    texture_wrap: Optional[str] = "repeat",
    device: Any = "cpu",
    path_manager: Any = None,
):
    """Read an OBJ file (path or text/binary file object) like pytorch3d.io.load_obj, geometry only.

    Polygons are split into fans (v0, v_i, v_i+1); negative (relative) indices are resolved. Materials are not
    read, so `materials_idx` is all -1 and `material_colors` / `texture_images` are None.

    Returns:
        verts (V, 3) float32, Faces, Properties(normals (N, 3) or None, verts_uvs (T, 2) or None, None...).

    Raises:
        ValueError: a malformed line or an index out of range (naming the line).
    """
    import torch

    if create_texture_atlas:
        raise ValueError("load_obj: create_texture_atlas=True is not supported by decaenv's pytorch3d stand-in")
    text = _read_text(f)
    v: List[List[float]] = []
    vt: List[List[float]] = []
    vn: List[List[float]] = []
    rows: List[List[Tuple[int, int, int]]] = []  # one triangle: three (v, vt, vn) corners
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "v":
                v.append([float(x) for x in parts[1:4]])
            elif parts[0] == "vt":
                vt.append([float(x) for x in parts[1:3]])
            elif parts[0] == "vn":
                vn.append([float(x) for x in parts[1:4]])
            elif parts[0] == "f":
                corners = [_corner(tok, len(v), len(vt), len(vn)) for tok in parts[1:]]
                if len(corners) < 3:
                    raise ValueError("a face needs at least 3 vertices")
                rows.extend([corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1))
        except ValueError as exc:
            raise ValueError(f"load_obj: line {lineno}: {exc} ({line.strip()[:60]!r})") from None
    idx = torch.tensor([[[c[k] for c in row] for k in range(3)] for row in rows], dtype=torch.int64)
    idx = idx.reshape(-1, 3, 3)
    verts = torch.tensor(v, dtype=torch.float32).reshape(-1, 3)
    has_uv, has_n = bool((idx[:, 1] >= 0).any()), bool((idx[:, 2] >= 0).any())
    empty = torch.zeros(0, 3, dtype=torch.int64)
    faces = Faces(
        verts_idx=idx[:, 0].to(device),
        normals_idx=(idx[:, 2] if has_n else empty).to(device),
        textures_idx=(idx[:, 1] if has_uv else empty).to(device),
        materials_idx=torch.full((idx.shape[0],), -1, dtype=torch.int64, device=device),
    )
    aux = Properties(
        normals=torch.tensor(vn, dtype=torch.float32, device=device) if vn else None,
        verts_uvs=torch.tensor(vt, dtype=torch.float32, device=device) if vt else None,
        material_colors=None,
        texture_images=None,
        texture_atlas=None,
    )
    return verts.to(device), faces, aux


def _read_text(f: Any) -> str:
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            data = fh.read()
    else:
        data = f.read()
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def _corner(token: str, nv: int, nt: int, nn: int) -> Tuple[int, int, int]:
    """'v', 'v/vt', 'v//vn' or 'v/vt/vn' (1-based or negative) -> 0-based (v, vt, vn), -1 where absent."""
    parts = token.split("/")
    out = []
    for k, count in enumerate((nv, nt, nn)):
        text = parts[k] if k < len(parts) else ""
        if not text:
            if k == 0:
                raise ValueError(f"face vertex {token!r} has no vertex index")
            out.append(-1)
            continue
        i = int(text)
        i = i - 1 if i > 0 else count + i
        if not 0 <= i < count:
            raise ValueError(f"index {text} out of range (1..{count})")
        out.append(i)
    return out[0], out[1], out[2]

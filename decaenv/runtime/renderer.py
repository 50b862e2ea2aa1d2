"""`Renderer`: DECA's renderer (DECA calls it `SRenderY`, deca-spec §6) on decaenv's rasterizer
(`decaenv.runtime.rasterizer`).

Differences from DECA that do not change results: inputs are never mutated (DECA adds +10 to the caller's
`trans_verts` z in place, §8.4; here the shift is applied to a copy), and the UV-space rasterization, which
depends only on the UV layout, is done once per device and reused.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from decaenv.runtime import mesh, shading
from decaenv.runtime.assets import Topology
from decaenv.runtime.outputs import RenderOutput

if TYPE_CHECKING:
    from decaenv.runtime.rasterizer.backends import Backend

#: DECA moves the projected mesh this far along +z before rasterizing (the rasterizer needs z >= 0).
Z_SHIFT = 10.0
#: Thresholds on the projected normal's z: textured render mask and shape-render mask.
POS_MASK_Z, SHAPE_MASK_Z = -0.05, 0.15


class Renderer(nn.Module):
    """Textured, shape, depth and UV-space rendering.

    Args:
        topology: faces and UVs of `head_template.obj`. image_size: crop size (224). uv_size: 256.
        backend: the rasterizer backend: a `Backend` resolved once by the caller (what `DECA` passes), or a name
            ("auto", "torch", "cpu", "cuda", "pytorch3d", "reference") resolved once per device type.
    """

    # Buffers registered in __init__ (declared here for type checkers).
    faces: torch.Tensor
    raw_uvcoords: torch.Tensor
    uvfaces: torch.Tensor
    uvcoords: torch.Tensor
    face_uvcoords: torch.Tensor
    face_colors: torch.Tensor
    dense_faces: torch.Tensor
    constant_factor: torch.Tensor

    def __init__(
        self, topology: Topology, image_size: int = 224, uv_size: int = 256, backend: Union[str, Backend] = "auto"
    ):
        super().__init__()
        self.image_size, self.uv_size, self.backend = image_size, uv_size, backend
        faces = torch.as_tensor(topology.faces, dtype=torch.long)
        uv = torch.as_tensor(topology.uvcoords, dtype=torch.float32)
        uvfaces = torch.as_tensor(topology.uvfaces, dtype=torch.long)
        # DECA-shaped buffers (batch dimension first, as `deca.render.faces` etc. are).
        self.register_buffer("faces", faces[None], persistent=False)
        self.register_buffer("raw_uvcoords", uv[None], persistent=False)
        self.register_buffer("uvfaces", uvfaces[None], persistent=False)
        uvcoords = torch.cat([uv * 2 - 1, torch.ones_like(uv[:, :1])], 1)
        uvcoords[:, 1] = -uvcoords[:, 1]
        self.register_buffer("uvcoords", uvcoords[None], persistent=False)
        self.register_buffer("face_uvcoords", mesh.face_vertices(uvcoords[None], uvfaces), persistent=False)
        grey = torch.full((1, int(faces.max()) + 1, 3), shading.SHAPE_GREY)
        self.register_buffer("face_colors", mesh.face_vertices(grey, faces), persistent=False)
        dense = mesh.generate_triangles(uv_size, uv_size)
        self.register_buffer("dense_faces", torch.from_numpy(dense)[None], persistent=False)
        self.register_buffer(
            "constant_factor", torch.tensor(shading.SH_CONSTANTS, dtype=torch.float32), persistent=False
        )
        self._uv_fragments: Dict[str, object] = {}
        self._resolved: Dict[str, Backend] = {}

    def backend_for(self, device: torch.device) -> Backend:
        """The rasterizer backend for tensors on `device`: the one given, or the name resolved once per type."""
        from decaenv.runtime.rasterizer.backends import Backend, get_backend

        if isinstance(self.backend, Backend):
            return self.backend
        kind = torch.device(device).type
        if kind not in self._resolved:
            self._resolved[kind] = get_backend(self.backend, device)
        return self._resolved[kind]

    # -- rasterization -------------------------------------------------------------------------------
    def rasterize(self, trans_verts: torch.Tensor, h: Optional[int] = None, w: Optional[int] = None):
        """Rasterize the projected mesh (z shifted by +10 on a copy).

        Args:
            trans_verts: (B, V, 3) DECA image space. h, w: output size (default: the crop size, both).
        Returns:
            `Fragments` (B, H, W).
        """
        from decaenv.runtime.rasterizer import rasterize

        h = self.image_size if h is None else int(h)
        w = h if w is None else int(w)
        shifted = trans_verts.detach() + trans_verts.new_tensor([0.0, 0.0, Z_SHIFT])
        return rasterize(mesh.face_vertices(shifted, self.faces[0]), h, w, backend=self.backend_for(shifted.device))

    def uv_fragments(self, device: torch.device):
        """Fragments of the UV-layout mesh at uv_size (cached per device; they never change)."""
        from decaenv.runtime.rasterizer import rasterize

        key = str(device)
        if key not in self._uv_fragments:
            self._uv_fragments[key] = rasterize(
                self.face_uvcoords.to(device), self.uv_size, self.uv_size, backend=self.backend_for(device)
            )
        return self._uv_fragments[key]

    def uv_sampler(self, device: torch.device):
        """For the covered texels of the UV map: their flat index, the 3 vertex ids and the barycentrics
        (from the cached UV rasterization; world2uv is then a gather and a weighted sum)."""
        key = f"sampler:{device}"
        if key not in self._uv_fragments:
            fragments = self.uv_fragments(device)
            p2f = fragments.pix_to_face[0].reshape(-1)
            texels = torch.nonzero(p2f >= 0).squeeze(1)
            vertex_ids = self.faces[0].to(device)[p2f[texels]]  # (N, 3)
            bary = fragments.bary[0].reshape(-1, 3)[texels]
            self._uv_fragments[key] = (texels, vertex_ids, bary)
        return self._uv_fragments[key]

    def world2uv(self, vertices: torch.Tensor, channels: int = 3) -> torch.Tensor:
        """Per-vertex values → UV map (uncovered texels 0), DECA's UV-space rasterization of the values.

        Works on (V, B·D) rows: for each triangle corner one row gather, weighted and summed in corner order
        (one corner at a time: a batch's three corners at once made a ~31 MB temporary, mapped fresh from the
        OS on every call), then one row copy per covered texel — several times faster on CPU than gathering
        and scattering along dimension 1, with the same sums.

        Args:
            vertices: (B, V, D) per-vertex values (positions, normals, ...).
        Returns:
            (B, channels, uv, uv) (DECA's keeps the first 3 channels), a view of a (uv, uv, B, D) buffer.
        """
        texels, vertex_ids, bary = self.uv_sampler(vertices.device)
        batch, n_vertices, dim = vertices.shape
        rows = vertices.transpose(0, 1).reshape(n_vertices, batch * dim)
        weights = bary.to(vertices.dtype)
        values = rows.index_select(0, vertex_ids[:, 0]) * weights[:, 0:1]
        for corner in (1, 2):
            values += rows.index_select(0, vertex_ids[:, corner]) * weights[:, corner : corner + 1]
        out = vertices.new_zeros(self.uv_size * self.uv_size, batch * dim).index_copy_(0, texels, values)
        return out.view(self.uv_size, self.uv_size, batch, dim).permute(2, 3, 0, 1)[:, :channels]

    # -- renders -----------------------------------------------------------------------------------
    def forward(
        self,
        vertices: torch.Tensor,
        transformed_vertices: torch.Tensor,
        albedos: torch.Tensor,
        lights: Optional[torch.Tensor] = None,
        h: Optional[int] = None,
        w: Optional[int] = None,
        background: Optional[torch.Tensor] = None,
        fragments=None,
    ) -> RenderOutput:
        """The textured render (§6.3): albedo through the UV grid, optional SH shading, composited.

        Args:
            vertices: (B, V, 3) world. transformed_vertices: (B, V, 3) image space (not modified).
            albedos: (B, 3, uv, uv). lights: (B, 9, 3) SH coefficients or None (DECA's decode passes None).
            h, w: output size. background: (B, 3, H, W) or None. fragments: reuse a rasterization.
        Returns:
            RenderOutput.
        """
        from decaenv.runtime.rasterizer import interpolate

        faces = self.faces[0]
        batch = vertices.shape[0]
        normals = mesh.vertex_normals(vertices, faces)
        transformed_normals = mesh.vertex_normals(transformed_vertices, faces)
        attributes = torch.cat(
            [
                self.face_uvcoords.expand(batch, -1, -1, -1),
                mesh.face_vertices(transformed_normals, faces),
                mesh.face_vertices(vertices, faces),
                mesh.face_vertices(normals, faces),
            ],
            -1,
        )
        fragments = fragments if fragments is not None else self.rasterize(transformed_vertices, h, w)
        rendering = interpolate(fragments, attributes)
        alpha = rendering[:, -1:]
        grid = rendering[:, :3].permute(0, 2, 3, 1)[..., :2]
        albedo_images = F.grid_sample(albedos, grid, align_corners=False)
        pos_mask = (rendering[:, 5:6] < POS_MASK_Z).float()
        normal_images = rendering[:, 9:12]
        if lights is not None and lights.shape[1] == 9:
            shading_images = shading.sh_shading(normal_images, lights)
            images = albedo_images * shading_images
        elif lights is not None:
            flat = normal_images.permute(0, 2, 3, 1).reshape(batch, -1, 3)
            shading_images = (
                shading.directional_shading(flat, lights)
                .reshape(batch, alpha.shape[2], alpha.shape[3], 3)
                .permute(0, 3, 1, 2)
            )
            images = albedo_images * shading_images
        else:
            images, shading_images = albedo_images, torch.zeros_like(albedo_images)
        images = images * alpha if background is None else images * alpha + background * (1 - alpha)
        return RenderOutput(
            images=images,
            albedo_images=albedo_images,
            alpha_images=alpha,
            pos_mask=pos_mask,
            shading_images=shading_images,
            grid=grid,
            normals=normals,
            normal_images=normal_images * alpha,
            transformed_normals=transformed_normals,
        )

    def render_shape(
        self,
        vertices: torch.Tensor,
        transformed_vertices: torch.Tensor,
        colors: Optional[torch.Tensor] = None,
        images: Optional[torch.Tensor] = None,
        detail_normal_images: Optional[torch.Tensor] = None,
        lights: Optional[torch.Tensor] = None,
        return_grid: bool = False,
        uv_detail_normals: Optional[torch.Tensor] = None,
        h: Optional[int] = None,
        w: Optional[int] = None,
        fragments=None,
    ):
        """Grey shaded render (§6.6); with `return_grid` also (normal_images, grid, masked alpha).

        Args:
            vertices, transformed_vertices: (B, V, 3). colors: (B, F, 3, 3) or None (grey).
            images: (B, 3, H, W) background or None. detail_normal_images: (B, 3, H, W) normals to shade with.
            lights: (B, L, 6) or None (DECA's 5 lights). fragments: reuse a rasterization.
        Returns:
            shape_images (B, 3, H, W), or a 4-tuple with `return_grid`.
        """
        from decaenv.runtime.rasterizer import interpolate

        faces = self.faces[0]
        batch = vertices.shape[0]
        if lights is None:
            lights = shading.default_shape_lights(batch, vertices.device, vertices.dtype)
        normals = mesh.vertex_normals(vertices, faces)
        transformed_normals = mesh.vertex_normals(transformed_vertices, faces)
        colors = self.face_colors.expand(batch, -1, -1, -1) if colors is None else colors
        attributes = torch.cat(
            [
                colors,
                mesh.face_vertices(transformed_normals, faces),
                mesh.face_vertices(vertices, faces),
                mesh.face_vertices(normals, faces),
                self.face_uvcoords.expand(batch, -1, -1, -1),
            ],
            -1,
        )
        fragments = fragments if fragments is not None else self.rasterize(transformed_vertices, h, w)
        rendering = interpolate(fragments, attributes)
        alpha = rendering[:, -1:]
        albedo_images = rendering[:, :3]
        pos_mask = (rendering[:, 5:6] < SHAPE_MASK_Z).float()
        normal_images = rendering[:, 9:12] if detail_normal_images is None else detail_normal_images
        height, width = alpha.shape[2], alpha.shape[3]
        flat = normal_images.permute(0, 2, 3, 1).reshape(batch, -1, 3)
        shading_images = shading.directional_shading(flat, lights).reshape(batch, height, width, 3).permute(0, 3, 1, 2)
        alpha = alpha * pos_mask
        background = torch.zeros_like(albedo_images) if images is None else images
        shape_images = albedo_images * shading_images * alpha + background * (1 - alpha)
        if return_grid:
            grid = rendering[:, 12:15].permute(0, 2, 3, 1)[..., :2]
            return shape_images, normal_images, grid, alpha
        return shape_images

    def render_views(
        self,
        vertices: torch.Tensor,
        transformed_vertices: torch.Tensor,
        albedos: torch.Tensor,
        h: int,
        w: int,
        background: Optional[torch.Tensor] = None,
        uv_detail_normals: Optional[torch.Tensor] = None,
        shapes: bool = True,
        normals: Optional[torch.Tensor] = None,
    ) -> Dict[str, Any]:
        """What DECA's `decode` renders, from one rasterization and one interpolation: the textured render
        (`forward` without lights) and the grey shape renders (`render_shape`, coarse and with detail normals).

        Large images (render_orig) are rasterized only inside the box the mesh covers and the results pasted
        into full-size images (outside it every output is what an empty pixel gives).

        Args:
            vertices: (B, V, 3) world. transformed_vertices: (B, V, 3) image space. albedos: (B, 3, uv, uv).
            h, w: output size. background: (B, 3, h, w) or None. uv_detail_normals: (B, 3, uv, uv) or None.
            shapes: also make the shape images. normals: world vertex normals if already known.
        Returns:
            {"ops": RenderOutput, and with `shapes`: "shape_images", "shape_detail_images" (with detail
            normals), "shape_alpha" (B, 1, h, w)}.
        """
        faces = self.faces[0]
        normals = mesh.vertex_normals(vertices, faces) if normals is None else normals
        transformed_normals = mesh.vertex_normals(transformed_vertices, faces)
        window = render_window(transformed_vertices, h, w)
        if window is None:
            return self._views(
                vertices,
                transformed_vertices,
                transformed_normals,
                normals,
                albedos,
                h,
                w,
                background,
                uv_detail_normals,
                shapes,
            )
        y0, y1, x0, x1 = window
        inner = to_window(transformed_vertices, h, w, window)
        crop = None if background is None else background[:, :, y0:y1, x0:x1]
        part = self._views(
            vertices, inner, transformed_normals, normals, albedos, y1 - y0, x1 - x0, crop, uv_detail_normals, shapes
        )
        return paste_views(part, window, h, w, background, albedos)

    def _views(
        self,
        vertices,
        transformed_vertices,
        transformed_normals,
        normals,
        albedos,
        h,
        w,
        background,
        uv_detail_normals,
        shapes,
    ) -> Dict[str, Any]:
        from decaenv.runtime.rasterizer import interpolate

        faces = self.faces[0]
        batch = vertices.shape[0]
        # DECA's forward also interpolates the world positions (for point lights, which decode never uses):
        # left out here, the channels are uv (0:3), transformed normals (3:6), world normals (6:9), coverage.
        attributes = torch.cat(
            [
                self.face_uvcoords.expand(batch, -1, -1, -1),
                mesh.face_vertices(transformed_normals, faces),
                mesh.face_vertices(normals, faces),
            ],
            -1,
        )
        fragments = self.rasterize(transformed_vertices, h, w)
        rendering = interpolate(fragments, attributes)
        alpha = rendering[:, -1:]
        grid = rendering[:, :3].permute(0, 2, 3, 1)[..., :2]
        albedo_images = F.grid_sample(albedos, grid, align_corners=False)
        normal_images = rendering[:, 6:9]
        images = albedo_images * alpha if background is None else albedo_images * alpha + background * (1 - alpha)
        ops = RenderOutput(
            images=images,
            albedo_images=albedo_images,
            alpha_images=alpha,
            pos_mask=(rendering[:, 5:6] < POS_MASK_Z).float(),
            shading_images=torch.zeros_like(images),
            grid=grid,
            normals=normals,
            normal_images=normal_images * alpha,
            transformed_normals=transformed_normals,
        )
        out: Dict[str, Any] = {"ops": ops}
        if not shapes:
            return out
        lights = shading.default_shape_lights(batch, vertices.device, vertices.dtype)
        # The grey vertex colour interpolates to grey × Σ bary (= grey inside the mesh).
        grey = shading.SHAPE_GREY * fragments.bary.to(alpha.dtype).sum(-1)[:, None]
        shape_alpha = alpha * (rendering[:, 5:6] < SHAPE_MASK_Z).float()
        backdrop = torch.zeros_like(images) if background is None else background

        def shade(normal_map: torch.Tensor) -> torch.Tensor:
            return shading.shape_shading(normal_map, lights, grey, shape_alpha, backdrop)

        out.update(shape_images=shade(normal_images), shape_alpha=shape_alpha)
        if uv_detail_normals is not None:
            detail_normal_images = F.grid_sample(uv_detail_normals, grid, align_corners=False) * shape_alpha
            out["shape_detail_images"] = shade(detail_normal_images)
        return out

    def render_depth(
        self, transformed_vertices: torch.Tensor, fragments=None, h: Optional[int] = None, w: Optional[int] = None
    ) -> torch.Tensor:
        """Depth image (§6.8): 1 at each mesh's nearest point, 0 at its farthest, 0 background.

        The normalisation is per batch element (DECA's is over the whole batch; its demo runs one image at
        a time, so the saved depth images agree).

        Args:
            transformed_vertices: (B, V, 3) (not modified).
        Returns:
            (B, 1, H, W).
        """
        from decaenv.runtime.rasterizer import interpolate

        z = -transformed_vertices[:, :, 2:]
        z = z - z.amin(dim=1, keepdim=True)
        z = z / z.amax(dim=1, keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)
        attributes = mesh.face_vertices(z.expand(-1, -1, 3).contiguous(), self.faces[0])
        fragments = fragments if fragments is not None else self.rasterize(transformed_vertices, h, w)
        return interpolate(fragments, attributes)[:, :1]

    # -- DECA-named helpers ------------------------------------------------------------------------
    def add_SHlight(self, normal_images: torch.Tensor, sh_coeff: torch.Tensor) -> torch.Tensor:
        """`shading.sh_shading` under DECA's method name. (B, 3, H, W), (B, 9, 3) → (B, 3, H, W)."""
        return shading.sh_shading(normal_images, sh_coeff)

    def add_directionlight(self, normals: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        """`shading.directional_shading` under DECA's method name. (B, N, 3), (B, L, 6) → (B, N, 3)."""
        return shading.directional_shading(normals, lights)


#: Views with more pixels than this are rasterized only inside the mesh's box (when that saves at least half).
WINDOW_MIN_PIXELS = 512 * 512


def render_window(transformed_vertices: torch.Tensor, h: int, w: int) -> Optional[Tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) pixel box holding every projected vertex of the batch (1-pixel margin), or None when
    the view is small, the box would not save half of it, or the mesh is off-screen."""
    if h * w <= WINDOW_MIN_PIXELS:
        return None
    xy = transformed_vertices[..., :2].detach()
    if not bool(torch.isfinite(xy).all()):
        return None
    px = (xy[..., 0] + 1) * (w / 2.0)
    py = (xy[..., 1] + 1) * (h / 2.0)
    x0, x1 = max(int(math.floor(float(px.min()))) - 1, 0), min(int(math.ceil(float(px.max()))) + 1, w)
    y0, y1 = max(int(math.floor(float(py.min()))) - 1, 0), min(int(math.ceil(float(py.max()))) + 1, h)
    if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) > h * w / 2:
        return None
    return y0, y1, x0, x1


def to_window(transformed_vertices: torch.Tensor, h: int, w: int, window: Tuple[int, int, int, int]) -> torch.Tensor:
    """Image-space vertices re-normalised to a pixel box of the image (pixel (x0, y0) becomes the box's first)."""
    y0, y1, x0, x1 = window
    x = ((transformed_vertices[..., 0] + 1) * (w / 2.0) - x0) * (2.0 / (x1 - x0)) - 1
    y = ((transformed_vertices[..., 1] + 1) * (h / 2.0) - y0) * (2.0 / (y1 - y0)) - 1
    return torch.stack([x, y, transformed_vertices[..., 2]], dim=-1)


def _paste(part: torch.Tensor, window, h: int, w: int, fill: torch.Tensor, channels_last: bool = False):
    y0, y1, x0, x1 = window
    if channels_last:  # (B, h, w, C)
        full = fill.expand(part.shape[0], h, w, part.shape[-1]).clone()
        full[:, y0:y1, x0:x1] = part
    else:
        full = fill.expand(part.shape[0], part.shape[1], h, w).clone()
        full[:, :, y0:y1, x0:x1] = part
    return full


def paste_views(
    part: Dict[str, Any], window, h: int, w: int, background: Optional[torch.Tensor], albedos: torch.Tensor
) -> Dict[str, Any]:
    """Full-size outputs from those of a window: outside it, what an uncovered pixel gets (zeros, the
    background, or for `albedo_images` the albedo sampled at the zero grid, as grid_sample gives)."""
    ops = part["ops"]
    zero = ops.images.new_zeros(())
    backdrop = background if background is not None else None
    corner = F.grid_sample(albedos, albedos.new_zeros(albedos.shape[0], 1, 1, 2), align_corners=False)

    def filled(t, fill=zero):
        return _paste(t, window, h, w, fill)

    def with_background(t):
        if backdrop is None:
            return filled(t)
        y0, y1, x0, x1 = window
        full = backdrop.clone()
        full[:, :, y0:y1, x0:x1] = t
        return full

    out: Dict[str, Any] = {
        "ops": RenderOutput(
            images=with_background(ops.images),
            albedo_images=filled(ops.albedo_images, corner),
            alpha_images=filled(ops.alpha_images),
            pos_mask=filled(ops.pos_mask),
            shading_images=filled(ops.shading_images),
            grid=_paste(ops.grid, window, h, w, zero, channels_last=True),
            normals=ops.normals,
            normal_images=filled(ops.normal_images),
            transformed_normals=ops.transformed_normals,
        )
    }
    for key in ("shape_images", "shape_detail_images"):
        if key in part:
            out[key] = with_background(part[key])
    if "shape_alpha" in part:
        out["shape_alpha"] = filled(part["shape_alpha"])
    return out

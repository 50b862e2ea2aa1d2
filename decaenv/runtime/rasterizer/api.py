"""Public rasterizer API: `rasterize` and `interpolate`, in DECA's normalised image space.

Coordinate convention (DECA's, which copies pytorch3d's mesh rasterizer; spec §6.2)
    Input vertices are DECA's projected `trans_verts` with z already shifted by +10: x to the right,
    y downward, both in [-1, 1] across the image (-1 is the outer edge of pixel 0), z smaller = nearer.
    Output pixel (row i, column j) samples the pixel centre
        x = -1 + (2j + 1) / W,    y = -1 + (2i + 1) / H.
    For non-square images the longer axis is handled like DECA's pytorch3d wrapper: its vertex
    coordinate is multiplied by long/short and its pixel centres span [-long/short, long/short], which
    samples the same points; only the area threshold and epsilon below see the scaled frame. The pixel
    centres are computed exactly as pytorch3d computes them (float32, from the mirrored pixel index) and
    negated, so every edge function equals pytorch3d's bit for bit.

Coverage, depth order and the silhouette rule (identical in every backend)
    * A face is skipped when its largest z is < 0 (behind the camera), when its signed 2-D area
      E(v0, v1, v2) satisfies |area| <= 1e-8 (degenerate), or when an x or y coordinate is not finite.
    * A pixel is covered by a face when its centre lies inside the face's bounding box and all three
      barycentrics are strictly > 0, w_k = E_k(p) / (E(v2, v0, v1) + 1e-8) with the epsilon added in
      double precision (pytorch3d's formula; no back-face culling, either winding counts).
    * Depth is the screen-space barycentric interpolation z = w0 z0 + w1 z1 + w2 z2 (not perspective
      corrected) and must be >= 0 (a NaN depth never covers).
    * The nearest covering face wins (smallest z). Equal depths keep the face with the lowest index:
      pytorch3d's strict `<` over faces in index order. -0 counts as +0.
    * Silhouette pixels: a pixel centre exactly on an edge is covered by neither face sharing that edge
      (strict test) unless float rounding puts it strictly inside one of them; two faces sharing an
      edge therefore never both claim a pixel through that edge, and a centre lying exactly on the
      mesh outline is empty. DECA's pytorch3d path behaves the same; its standard CUDA rasterizer
      (`w0 > 0, w1 >= 0, w2 >= 0`, harmonic depth) differs on such edge pixels only.
    Interior pixels therefore match DECA's pytorch3d path exactly (same face, barycentrics to the last
    bit up to pytorch3d's own CUDA fused multiply-adds).

The rasterizer is for inference: it is not differentiable with respect to the vertices (like DECA's
standard rasterizer, FM11). `interpolate` is differentiable with respect to the attributes.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Tuple, Union

import torch

from decaenv.errors import UsageError

if TYPE_CHECKING:
    from decaenv.runtime.rasterizer.backends import Backend

EMPTY_FACE = -1
EMPTY_DEPTH = -1.0


@dataclass(frozen=True)
class Fragments:
    """What the rasterizer saw at each pixel.

    Attributes:
        pix_to_face: (B, H, W) int64 index in [0, F) of the nearest face of mesh b, -1 where empty.
        bary: (B, H, W, 3) float32 screen-space barycentrics of that face, 0 where empty.
        zbuf: (B, H, W) float32 interpolated depth of that face, -1 where empty.
        backend: name of the backend that produced them ("cpu", "torch", ...).
    """

    pix_to_face: torch.Tensor
    bary: torch.Tensor
    zbuf: torch.Tensor
    backend: str = ""

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool: covered pixels."""
        return self.pix_to_face >= 0


def _ndc_centres(n: int, other: int) -> torch.Tensor:
    """pytorch3d's PixToNonSquareNdc for every index of an axis of n pixels, in float32.

    Returns:
        (n,) float32: centre of pixel index i (pytorch3d's own, mirrored, axis).
    """
    one = torch.ones((), dtype=torch.float32)
    rng = one * 2.0
    if n > other:
        rng = (float(n) * rng) / float(other)
    offset = rng / 2.0
    index = torch.arange(n, dtype=torch.float32)
    return -offset + (rng * index + offset) / float(n)


@functools.lru_cache(maxsize=64)
def _pixel_centres(h: int, w: int, device: str) -> Tuple[torch.Tensor, torch.Tensor]:
    # DECA frame = pytorch3d frame mirrored: column j is pytorch3d's index w-1-j, negated.
    xs = -_ndc_centres(w, h).flip(0)
    ys = -_ndc_centres(h, w).flip(0)
    return xs.contiguous().to(device), ys.contiguous().to(device)


def pixel_centres(h: int, w: int, device="cpu") -> Tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates of an h x w image in the raster frame (cached per size and device:
    treat them as read-only).

    Returns:
        xs: (W,) float32 ascending, ~ (-1 + (2j+1)/W) * max(W/H, 1).
        ys: (H,) float32 ascending, ~ (-1 + (2i+1)/H) * max(H/W, 1).
    """
    return _pixel_centres(int(h), int(w), str(torch.device(device)))


def _check_size(name: str, value) -> int:
    """An image size as a positive Python int (numpy and 0-d torch integers accepted)."""
    try:
        size = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        size = None
    if size is None or size < 1:
        raise UsageError(f"rasterize: {name} must be a positive int, got {value!r}")
    return size


def prepare_face_vertices(face_vertices: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Validate and convert face vertices to the raster frame (float32, contiguous, long axis scaled).

    Args:
        face_vertices: (B, F, 3, 3) floating tensor in DECA's normalised image space.

    Returns:
        (B, F, 3, 3) float32 contiguous tensor (a copy when anything had to change).
    """
    if not isinstance(face_vertices, torch.Tensor):
        raise UsageError(f"rasterize: face_vertices must be a torch.Tensor, got {type(face_vertices).__name__}")
    if face_vertices.dim() != 4 or tuple(face_vertices.shape[2:]) != (3, 3):
        raise UsageError(f"rasterize: face_vertices must have shape (B, F, 3, 3), got {tuple(face_vertices.shape)}")
    if not face_vertices.is_floating_point():
        raise UsageError(f"rasterize: face_vertices must be a floating tensor, got {face_vertices.dtype}")
    fv = face_vertices.detach().to(torch.float32)
    if w > h:
        fv = fv.clone()
        fv[..., 0] = fv[..., 0] * w / h
    elif h > w:
        fv = fv.clone()
        fv[..., 1] = fv[..., 1] * h / w
    return fv.contiguous()


def rasterize(face_vertices: torch.Tensor, h: int, w: int, backend: Union[str, "Backend"] = "auto") -> Fragments:
    """Rasterize a batch of triangle meshes given per-face vertices (see the module docstring).

    Args:
        face_vertices: (B, F, 3, 3) float tensor, vertex k of face f of mesh b at [b, f, k] as (x, y, z)
            in DECA's normalised image space; computed in float32.
        h: image height in pixels.
        w: image width in pixels.
        backend: a `Backend` already resolved by `choose_backend` (what the renderer passes), or a name resolved
            here: "auto" (see `choose_backend`), "cpu", "cuda", "pytorch3d", "torch" or "reference".

    Returns:
        Fragments on the device of `face_vertices`.

    Raises:
        UsageError: bad shapes, sizes or backend name, or a backend that cannot take this device.
        BuildError: an explicitly requested compiled backend that is not built.
    """
    from decaenv.runtime.rasterizer.backends import get_backend

    h, w = _check_size("h", h), _check_size("w", w)
    fv = prepare_face_vertices(face_vertices, h, w)
    impl = get_backend(backend, fv.device)
    xs, ys = pixel_centres(h, w, fv.device)
    pix_to_face, bary, zbuf = impl.run(fv, xs, ys)
    return Fragments(pix_to_face, bary, zbuf, impl.name)


def _broadcast_batch(fragments: Fragments, attrs: torch.Tensor):
    p2f, bary = fragments.pix_to_face, fragments.bary
    bf, ba = p2f.shape[0], attrs.shape[0]
    if bf == ba:
        return p2f, bary, attrs
    if bf == 1:
        return p2f.expand(ba, -1, -1), bary.expand(ba, -1, -1, -1), attrs
    if ba == 1:
        return p2f, bary, attrs.expand(bf, -1, -1, -1)
    raise UsageError(f"interpolate: batch sizes differ: fragments {bf}, face_attributes {ba}")


def _compiled_interpolate(fragments: Fragments, face_attributes: torch.Tensor):
    """The extension's CPU interpolation kernel when it is loaded and applies (float32 CPU tensors, no
    gradient wanted: the kernel has no backward), else None."""
    if torch.is_grad_enabled() and face_attributes.requires_grad:
        return None
    tensors = (fragments.pix_to_face, fragments.bary, face_attributes)
    if any(t.device.type != "cpu" for t in tensors) or fragments.pix_to_face.dtype != torch.int64:
        return None
    if fragments.bary.dtype != torch.float32 or face_attributes.dtype != torch.float32:
        return None
    from decaenv.runtime.rasterizer import extension

    return extension.loaded_op("interpolate")


def interpolate(fragments: Fragments, face_attributes: torch.Tensor) -> torch.Tensor:
    """Barycentric interpolation of per-face-vertex attributes, DECA's rasterizer output layout.

    Each covered pixel gets sum_k bary_k * attr[face, k, :] (no renormalisation); empty pixels get 0.
    A batch of 1 on either side is broadcast against the other. Where the compiled extension is loaded,
    float32 CPU inputs go through its kernel (`decaenv::interpolate`): the same numbers, bit for bit.

    Args:
        fragments: from `rasterize`, pix_to_face (B, H, W).
        face_attributes: (B, F, 3, D) float tensor, the attribute of vertex k of face f at [b, f, k].

    Returns:
        (B, D + 1, H, W) tensor of the attributes' dtype; channel D is the coverage mask (1 or 0).
    """
    if face_attributes.dim() != 4 or face_attributes.shape[2] != 3:
        raise UsageError(
            f"interpolate: face_attributes must have shape (B, F, 3, D), got {tuple(face_attributes.shape)}"
        )
    p2f, bary, attrs = _broadcast_batch(fragments, face_attributes)
    b, h, w = p2f.shape
    n_faces, d = attrs.shape[1], attrs.shape[3]
    if p2f.numel() and int(p2f.max()) >= n_faces:
        raise UsageError(f"interpolate: fragments index {int(p2f.max()) + 1} faces, attributes have {n_faces}")
    kernel = _compiled_interpolate(fragments, face_attributes)
    if kernel is not None:  # the same numbers in one pass (csrc/interpolate.h)
        return kernel(fragments.pix_to_face.contiguous(), fragments.bary.contiguous(), face_attributes.contiguous())
    covered = p2f >= 0
    # Only covered pixels are gathered and weighted (a face crop leaves about half of them empty); each is
    # bary_0·a_0 + bary_1·a_1 + bary_2·a_2 summed in that order, as the sum over the corner axis does.
    pixels = covered.reshape(-1).nonzero().squeeze(1)  # flat (b, y, x) indices
    batch_of, plane = torch.div(pixels, h * w, rounding_mode="floor"), pixels % (h * w)
    rows = batch_of * n_faces + p2f.reshape(-1)[pixels]
    corners = attrs.reshape(b * n_faces, 3, d)
    weights = bary.reshape(-1, 3).index_select(0, pixels).to(attrs.dtype)  # (N, 3)
    out = attrs.new_zeros(b, d + 1, h * w)
    # one corner at a time (all three at once made (N, 3, D) temporaries of ~20 MB, mapped fresh per call)
    values = corners[:, 0].index_select(0, rows) * weights[:, 0:1]  # (N, D)
    for k in (1, 2):
        values += corners[:, k].index_select(0, rows) * weights[:, k : k + 1]
    out.permute(0, 2, 1)[batch_of, plane, :d] = values
    out[:, d] = covered.reshape(b, h * w).to(attrs.dtype)
    return out.view(b, d + 1, h, w)

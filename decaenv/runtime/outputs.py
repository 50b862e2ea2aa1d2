"""Frozen output records of the runtime (smplx's ModelOutput idea: attributes plus read-only dict access).

Dict access keeps DECA-style code working: `ops['images']`, `flame_out['vertices']`; FLAME's output also
unpacks like DECA's tuple: `verts, lmk2d, lmk3d = flame(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Dict, Iterator, List, Tuple


class _Record:
    """Read-only mapping access over a dataclass's non-None fields."""

    __dataclass_fields__: ClassVar[Dict[str, Any]]  # every subclass is a dataclass (what `fields` reads)

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def keys(self) -> List[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def items(self) -> List[Tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.keys() else default

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.items())


@dataclass(frozen=True)
class FlameOutput(_Record):
    """FLAME's output.

    Attributes:
        vertices: (B, V, 3) float32 posed vertices, FLAME world frame (metres).
        landmarks2d: (B, 68, 3) float32 landmarks with the dynamic contour (still 3D; DECA's "2D" set).
        landmarks3d: (B, 68, 3) float32 landmarks from the full static embedding.
    """

    vertices: Any
    landmarks2d: Any
    landmarks3d: Any

    def __iter__(self) -> Iterator[Any]:
        return iter((self.vertices, self.landmarks2d, self.landmarks3d))


@dataclass(frozen=True)
class RenderOutput(_Record):
    """The textured render (deca-spec §6.3); every image is (B, C, H, W) float32.

    Attributes:
        images: rendered albedo (unshaded unless lights were given), composited on the background.
        albedo_images: (B, 3, H, W) albedo sampled through the UV grid. alpha_images: (B, 1, H, W) coverage.
        pos_mask: (B, 1, H, W) 1 where the projected normal faces the camera (n_z < -0.05).
        shading_images: (B, 3, H, W) shading (zeros without lights). grid: (B, H, W, 2) UV sampling grid.
        normals: (B, V, 3) world vertex normals. normal_images: (B, 3, H, W) world normals × alpha.
        transformed_normals: (B, V, 3) normals of the projected mesh.
    """

    images: Any
    albedo_images: Any
    alpha_images: Any
    pos_mask: Any
    shading_images: Any
    grid: Any
    normals: Any
    normal_images: Any
    transformed_normals: Any

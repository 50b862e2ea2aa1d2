"""DECA's rasterizer, re-implemented: pure-PyTorch backends and a compiled CPU/CUDA extension.

Public API (semantics in `decaenv.runtime.rasterizer.api`):
    rasterize(face_vertices, h, w, backend="auto" | Backend) -> Fragments
    interpolate(fragments, face_attributes) -> (B, D + 1, H, W)
    available_backends(device=None), choose_backend(device, requested) -> Backend (resolved once, passed down)
    build(cpu=, cuda=, verbose=) -> BuildResult      (what `decaenv build` runs)
    extension_status() -> ExtensionStatus            (what the doctor reports)
    diagnose_build_output(text) -> Diagnosis         (compiler error -> cause and fix; no torch needed)

Attributes are imported lazily, so `decaenv.runtime.rasterizer.diagnose` works without torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Fragments": "api",
    "rasterize": "api",
    "interpolate": "api",
    "pixel_centres": "api",
    "available_backends": "backends",
    "choose_backend": "backends",
    "Backend": "backends",
    "build": "builder",
    "BuildResult": "builder",
    "VariantResult": "builder",
    "extension_status": "extension",
    "ExtensionStatus": "extension",
    "diagnose_build_output": "diagnose",
    "Diagnosis": "diagnose",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

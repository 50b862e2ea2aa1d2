"""Shim: a stand-in `pytorch3d` with the few names DECA and its forks use, only where pytorch3d is not installed.

DECA's `set_rasterizer('pytorch3d')` (its config's default `rasterizer_type`, and `--rasterizer_type pytorch3d`,
the fix its README gives for a failing JIT build) imports `pytorch3d.structures.Meshes`,
`pytorch3d.io.load_obj` and `pytorch3d.renderer.mesh.rasterize_meshes`. pytorch3d has no Linux wheel or sdist
on PyPI for today's Python and torch (FM25), so that path fails with `No module named 'pytorch3d'`. This shim
registers `pytorch3d`, `pytorch3d.structures`, `pytorch3d.io`, `pytorch3d.renderer`, `pytorch3d.renderer.mesh`
and `pytorch3d.renderer.mesh.rasterize_meshes` in `sys.modules`, holding decaenv's implementations
(`decaenv.patches._p3d_surface`): same call signatures, same conventions (NDC, packed face indices, -1 where
empty), one face per pixel. Any other pytorch3d name raises an AttributeError that says it is a stand-in.
Nothing is registered when a real pytorch3d is importable.
Upstream: https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md (no PyPI builds; FM25)
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any, Dict

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import Patcher

#: module -> names it exports (from decaenv.patches._p3d_surface).
EXPORTS: Dict[str, tuple] = {
    "pytorch3d": (),
    "pytorch3d.structures": ("Meshes",),
    "pytorch3d.io": ("load_obj",),
    "pytorch3d.renderer": ("rasterize_meshes",),
    "pytorch3d.renderer.mesh": ("rasterize_meshes",),
    "pytorch3d.renderer.mesh.rasterize_meshes": ("rasterize_meshes",),
}
_PACKAGES = {"pytorch3d", "pytorch3d.renderer", "pytorch3d.renderer.mesh"}
_MARK = "__decaenv_stand_in__"


def _module(name: str) -> types.ModuleType:
    from decaenv.patches import _p3d_surface

    mod = types.ModuleType(name, f"decaenv's stand-in for {name} (a small part of pytorch3d's API)")
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=name in _PACKAGES)
    if name in _PACKAGES:
        mod.__path__ = []  # submodules resolve only to the stand-ins beside it
    if name == "pytorch3d":
        vars(mod)["__version__"] = "0.0.0+decaenv"
    setattr(mod, _MARK, True)
    for attr in EXPORTS[name]:
        setattr(mod, attr, getattr(_p3d_surface, attr))

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AttributeError(
            f"{name}.{attr}: decaenv's pytorch3d stand-in has only Meshes, load_obj and "
            "rasterize_meshes (install pytorch3d for the rest)"
        )

    mod.__getattr__ = __getattr__  # type: ignore[method-assign]  # a module-level __getattr__ (PEP 562)
    return mod


def stand_in_modules() -> Dict[str, types.ModuleType]:
    """Fresh stand-in modules by name; packages hold their submodules as attributes, except where the real
    pytorch3d binds the function of the same name instead (`pytorch3d.renderer.mesh.rasterize_meshes`)."""
    mods = {name: _module(name) for name in EXPORTS}
    for name, mod in mods.items():
        parent, _, child = name.rpartition(".")
        if parent and not hasattr(mods[parent], child):
            setattr(mods[parent], child, mod)
    return mods


def is_stand_in(module: Any) -> bool:
    """True for a module registered by this shim."""
    return bool(getattr(module, _MARK, False))


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    if any(name in sys.modules for name in EXPORTS):
        return  # a real pytorch3d (or a previous stand-in) is already imported
    for name, module in stand_in_modules().items():
        patcher.setitem(sys.modules, name, module)


PATCH = Patch(
    id="pytorch3d-stand-in",
    title="pytorch3d stand-in: Meshes, load_obj, rasterize_meshes on decaenv's rasterizer (only without pytorch3d)",
    reason="DECA's rasterizer_type 'pytorch3d' needs pytorch3d, which has no Linux wheel or sdist on PyPI for "
    "today's Python and torch (No module named 'pytorch3d')",
    link="https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md",
    target=Target("pytorch3d", "pytorch3d"),
    needed_for=versions(),
    apply=_apply,
    when_absent=True,
)

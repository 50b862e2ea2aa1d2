"""Synthetic DECA data dirs: DECA's file formats and key layouts with random, seeded values.

Real FLAME and DECA weights are licensed and cannot be downloaded here; these files exercise the real
loading code (chumpy-style FLAME pickle, `torch.save` checkpoint, pickled landmark embedding, UV maps)
everywhere. `make_assets(dir, seed=0)` writes a complete data dir; `decaenv selftest --make-assets DIR`
is the command-line form. Needs the `runtime` extra (torch, scipy, pillow).
"""

from __future__ import annotations

__all__ = ["make_assets", "AssetReport"]


def __getattr__(name):
    if name in __all__:
        from decaenv.synthetic import assets

        return getattr(assets, name)
    raise AttributeError(name)

"""DECA's public test assets (`$DECAENV_TEST_ASSETS`, read-only) and small synthetic files for tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

TEST_ASSETS_ENV = "DECAENV_TEST_ASSETS"


def public_topology_dir() -> Optional[Path]:
    """`$DECAENV_TEST_ASSETS/deca-data` when available, else None (procedural topology)."""
    value = os.environ.get(TEST_ASSETS_ENV)
    if value and (Path(value) / "deca-data" / "head_template.obj").is_file():
        return Path(value) / "deca-data"
    return None


def write_texture_space(path: Path, tex_type: str, side: int = 32, seed: int = 0) -> Path:
    """A small texture space in the official key layout (FLAME: mean/tex_dir ×255; BFM: MU/PC, BGR)."""
    rng = np.random.default_rng(seed)
    if tex_type == "FLAME":
        np.savez(path, mean=rng.uniform(60, 200, (side, side, 3)), tex_dir=rng.normal(0, 5, (side, side, 3, 200)))
    else:
        np.savez(path, MU=rng.uniform(0.2, 0.8, 3 * side * side), PC=rng.normal(0, 0.02, (3 * side * side, 199)))
    return path

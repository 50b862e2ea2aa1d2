"""DECA's public test assets (`$DECAENV_TEST_ASSETS`, read-only) and small synthetic files for tests."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np

TEST_ASSETS_ENV = "DECAENV_TEST_ASSETS"


def public_topology_dir() -> Optional[Path]:
    """`$DECAENV_TEST_ASSETS/deca-data` when available, else None (procedural topology)."""
    value = os.environ.get(TEST_ASSETS_ENV)
    if value and (Path(value) / "deca-data" / "head_template.obj").is_file():
        return Path(value) / "deca-data"
    return None


#: Shape+expression components of the mini FLAME (DECA's FLAME 2020 has 400).
MINI_FLAME_COMPONENTS = 20


def mini_flame_arrays(seed: int = 0) -> dict:
    """FLAME's arrays on the procedural head (FLAME's 5023 vertices / 9976 faces / 5 joints) with 20
    shape+expression components instead of 400: its pickle has the real layout but 7 MB instead of 53 MB.

    For tests of loading, conversion, shim, venv and transfer MECHANICS; tests of DECA compatibility
    (`components == 400`, `deca_compatible`) use a full-size FLAME (`procedural_data_dir`'s).
    """
    from decaenv.synthetic import flame, topology

    arrays = flame.flame_arrays(topology.procedural_head(), np.random.default_rng(seed))
    arrays["shapedirs"] = np.ascontiguousarray(arrays["shapedirs"][:, :, :MINI_FLAME_COMPONENTS])
    return arrays


def write_texture_space(path: Path, tex_type: str, side: int = 32, seed: int = 0) -> Path:
    """A small texture space in the official key layout (FLAME: mean/tex_dir ×255; BFM: MU/PC, BGR)."""
    rng = np.random.default_rng(seed)
    if tex_type == "FLAME":
        np.savez(path, mean=rng.uniform(60, 200, (side, side, 3)), tex_dir=rng.normal(0, 5, (side, side, 3, 200)))
    else:
        np.savez(path, MU=rng.uniform(0.2, 0.8, 3 * side * side), PC=rng.normal(0, 0.02, (3 * side * side, 199)))
    return path


@contextlib.contextmanager
def shared_synthetic_checkpoints(written: Dict[Tuple[int, bool], Path]) -> Iterator[None]:
    """While active, `make_assets` hard-links `deca_model.tar` from `written[(seed, with_optimizer)]` (a
    checkpoint an earlier data dir of this session holds) instead of writing the same bytes again.

    `checkpoint.write_checkpoint(path, seed, with_optimizer)` is a function of its seed and optimizer flag
    alone, not of the topology or the folder (tests/synthetic/test_assets.py checks its bytes), so the
    procedural and the public-topology data dirs hold the same bytes. Tests never write into the session data
    dirs (`_support.synthetic_cache` rebuilds one that changed), so the shared inode is never modified.
    """
    from decaenv.synthetic import checkpoint

    real: Callable[..., None] = checkpoint.write_checkpoint

    def write_or_link(path: os.PathLike, seed: int, with_optimizer: bool = True) -> None:
        first = written.get((seed, with_optimizer))
        if first is not None and first.is_file():
            link_or_copy(first, Path(path))
        else:
            real(path, seed, with_optimizer)

    checkpoint.write_checkpoint = write_or_link
    try:
        yield
    finally:
        checkpoint.write_checkpoint = real


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link `src` at `dst` (a copy where the filesystem cannot link). Only for files nobody modifies
    in place: a write through one name would show through the other."""
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)

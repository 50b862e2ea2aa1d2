"""Runtime fixtures: one DECA model per session (building one costs seconds), a face crop, texture spaces."""

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def deca(synthetic_data_dir):
    """DECA on the synthetic data dir, CPU, pure-torch rasterizer (no compiled extension needed)."""
    from decaenv.runtime import DECA

    return DECA(synthetic_data_dir, device="cpu", rasterizer="torch")


@pytest.fixture(scope="session")
def astronaut_crop():
    """DECA's crop of skimage's astronaut (public domain), as a (1, 3, 224, 224) tensor, and the crop."""
    import skimage.data
    import torch

    from decaenv.runtime.crop import make_crop

    crop = make_crop(skimage.data.astronaut(), (177.0, 82.0, 272.0, 178.0), "bbox", "test")
    return torch.from_numpy(crop.image)[None], crop


@pytest.fixture(scope="session")
def write_texture_space():
    """A function writing a small texture space (tests cannot import conftest under importlib mode)."""
    return _write_texture_space


def _write_texture_space(path: Path, tex_type: str, side: int = 32, seed: int = 0) -> Path:
    """A small texture space in the official key layout (FLAME: mean/tex_dir ×255; BFM: MU/PC, BGR)."""
    rng = np.random.default_rng(seed)
    if tex_type == "FLAME":
        np.savez(path, mean=rng.uniform(60, 200, (side, side, 3)), tex_dir=rng.normal(0, 5, (side, side, 3, 200)))
    else:
        np.savez(path, MU=rng.uniform(0.2, 0.8, 3 * side * side), PC=rng.normal(0, 0.02, (3 * side * side, 199)))
    return path


@pytest.fixture(scope="session")
def reconstruct_data_dir(synthetic_data_dir, mtcnn_data_dir, tmp_path_factory):
    """The synthetic data dir plus the MTCNN weights in `mtcnn/` (what `decaenv fetch` + `fetch mtcnn-*` leave),
    made of symlinks: nothing is copied and the shared synthetic dir is not modified."""
    out = tmp_path_factory.mktemp("reconstruct-data")
    for item in list(synthetic_data_dir.iterdir()) + [mtcnn_data_dir / "mtcnn"]:
        (out / item.name).symlink_to(item, target_is_directory=item.is_dir())
    return out

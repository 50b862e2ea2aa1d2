"""Runtime fixtures: one DECA model per session (building one costs seconds), a face crop."""

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


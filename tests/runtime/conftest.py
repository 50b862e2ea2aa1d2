"""Runtime fixtures: one DECA model per session (building one costs seconds), a face crop, TORCH_HOMEs with
random face_alignment weights."""

from pathlib import Path
from typing import Callable, Dict

import pytest
from _support.synthetic_cache import cache_key, cache_root, cached_build


@pytest.fixture(scope="session")
def deca(synthetic_data_dir):
    """DECA on the synthetic data dir, CPU, pure-torch rasterizer (no compiled extension needed)."""
    from decaenv.runtime import DECA

    return DECA(synthetic_data_dir, device="cpu", rasterizer="torch")


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: oneDNN's results may depend on the thread count (MTCNN's boxes then move
    by ~1e-5 px), and the input workers (threads or processes) detect on one thread, so a run they are compared
    with does too: the comparison is about the workers, not about thread counts."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def two_torch_threads():
    """torch on two threads for the test (what a 2-CPU machine gives by default), restored after: tests of how
    threads split or keep their counts need more than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def astronaut_crop():
    """DECA's crop of skimage's astronaut (public domain), as a (1, 3, 224, 224) tensor, and the crop."""
    import skimage.data
    import torch

    from decaenv.runtime.crop import make_crop

    crop = make_crop(skimage.data.astronaut(), (177.0, 82.0, 272.0, 178.0), "bbox", "test")
    return torch.from_numpy(crop.image)[None], crop


@pytest.fixture(scope="session")
def fan_torch_homes(tmp_path_factory) -> Callable[[bool], Path]:
    """`home(faces)`: a TORCH_HOME holding random face_alignment weights (`decaenv.synthetic.fan`: float16 state
    dicts under the real file names) whose S3FD finds one large face (`faces=True`) or none. Written once and kept
    between runs (`_support.synthetic_cache`); the 2DFAN4 landmark file (the same bytes for both) is written once
    and linked into the other. Tests only read them."""
    pytest.importorskip("face_alignment")
    from decaenv.synthetic.fan import write_fan_weights

    homes: Dict[bool, Path] = {}

    def build(root: Path, faces: bool) -> None:
        first = next(iter(homes.values()), None)
        landmarks_from = first / "hub" / "checkpoints" if first else None
        write_fan_weights(root / "hub" / "checkpoints", faces=faces, landmarks_from=landmarks_from)

    def home(faces: bool) -> Path:
        if faces not in homes:
            if cache_root() is None:
                homes[faces] = tmp_path_factory.mktemp("fan-faces" if faces else "fan-blind")
                build(homes[faces], faces)
            else:  # kept between runs, like the synthetic data dirs
                import face_alignment

                key = cache_key("fan-home", faces, face_alignment.__version__)
                homes[faces] = cached_build(key, lambda root: build(root, faces))
        return homes[faces]

    return home

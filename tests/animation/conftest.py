"""Fixtures of the transfer / animate / extra-output tests: the synthetic data dir, one CPU DECA per session,
photos and a tiny face video."""

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def small_data_dir(synthetic_data_dir) -> Path:
    """The suite's synthetic data dir (built once per session; the I/O budget allows one such checkpoint)."""
    return synthetic_data_dir


@pytest.fixture(scope="session")
def small_deca(small_data_dir):
    from decaenv.runtime import DECA

    return DECA(small_data_dir, device="cpu", rasterizer="torch")


@pytest.fixture(scope="session")
def faces(tmp_path_factory):
    """Two face photos: the shared DECA test photos when available (read in place), else skimage's astronaut
    and its mirror image (public domain)."""
    import os

    value = os.environ.get("DECAENV_TEST_ASSETS")
    if value and (Path(value) / "images" / "alfw1.png").is_file():
        return Path(value) / "images" / "alfw1.png", Path(value) / "images" / "image02673.png"
    import skimage.data
    from PIL import Image

    folder = tmp_path_factory.mktemp("faces")
    astronaut = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((256, 256)))
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(folder / "mirror.png")
    return folder / "astronaut.png", folder / "mirror.png"


def write_video(path: Path, frames, fps: int = 6) -> Path:
    """An MP4 (mpeg4) of the given (H, W, 3) uint8 frames."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def face_video(tmp_path_factory, faces):
    """A 5-frame 6 fps video of the first photo shifted a little each frame, plus one blank frame (index 2)
    where no face can be found."""
    pytest.importorskip("av")
    from PIL import Image

    image = np.asarray(Image.open(faces[0]).convert("RGB").resize((224, 224)))
    frames = [np.roll(image, 3 * k, axis=1) for k in range(5)]
    frames[2] = np.full_like(image, 128)
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames)


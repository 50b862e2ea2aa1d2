"""The MTCNN fast pass (large faces first, full search as fallback): the same faces and the same crops as the
full search on the shared photos (at 512×512, where the fast pass applies)."""

import numpy as np
import pytest
from PIL import Image

from decaenv.runtime.crop import make_crop
from decaenv.runtime.detectors.mtcnn import fast_skip_levels


def largest(faces):
    return max(faces, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])) if faces else None


def crop_corners(image, box) -> np.ndarray:
    """Where the 224×224 crop's corners fall in the image."""
    tform = make_crop(image, box, "bbox", "test").tform
    corners = np.array([[0, 0, 1], [223, 0, 1], [0, 223, 1], [223, 223, 1]], float) @ np.linalg.inv(tform).T
    return corners[:, :2] / corners[:, 2:]


def test_fast_pass_skips_only_small_face_levels():
    assert fast_skip_levels(224) == 0 and fast_skip_levels(512) == 3 and fast_skip_levels(2048) > 6


@pytest.mark.slow
def test_fast_pass_same_faces_and_crops_on_shared_photos(shared_assets, mtcnn_data_dir):
    from decaenv.runtime.detectors import create_detector
    from decaenv.runtime.images import read_image

    detector = create_detector("mtcnn", "cpu", data_dir=mtcnn_data_dir).detector
    files = sorted((shared_assets / "images").iterdir())
    assert len(files) >= 9
    found = 0
    for path in files[::2]:  # every other photo keeps the test short on a shared machine
        image = np.asarray(Image.fromarray(read_image(path)).resize((512, 512), Image.Resampling.BICUBIC))
        full, fast = largest(detector.detect_all(image, fast=False)), largest(detector.detect_all(image, fast=True))
        assert (full is None) == (fast is None), path.name
        if full is not None:
            found += 1
            assert np.abs(crop_corners(image, full.box) - crop_corners(image, fast.box)).max() <= 2.0, path.name
    assert found == len(files[::2])


@pytest.mark.slow
def test_fast_pass_falls_back_to_the_full_search_for_small_faces(mtcnn_data_dir):
    import skimage.data

    from decaenv.runtime.detectors import create_detector

    detector = create_detector("mtcnn", "cpu", data_dir=mtcnn_data_dir).detector
    canvas = np.full((1024, 1024, 3), 90, np.uint8)  # the astronaut's ~95 px face is < 1024 / 8: fast pass misses it
    canvas[:256, :256] = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.Resampling.BOX))
    fast = largest(detector.detect_all(canvas, fast=True))
    full = largest(detector.detect_all(canvas, fast=False))
    assert fast is not None and full is not None and np.allclose(fast.box, full.box)

"""The crop warp is skimage's `warp(image / 255, inverse)` bit for bit (decaenv.runtime.warp)."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import skimage.data
from skimage.transform import warp

from decaenv.runtime import crop
from decaenv.runtime.warp import bilinear_warp


def _skimage(image: np.ndarray, inverse: np.ndarray, size: int) -> np.ndarray:
    return warp(image / 255.0, inverse, output_shape=(size, size)).transpose(2, 0, 1)


def _random_inverse(rng: np.random.Generator, k: int) -> np.ndarray:
    scale, angle = rng.uniform(0.3, 3.0), rng.uniform(-1.0, 1.0)
    inverse = np.array(
        [
            [scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-300, 500)],
            [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-300, 500)],
            [0.0, 0.0, 1.0],
        ]
    )
    if k % 3 == 0:  # a homography: skimage's projective branch
        inverse[2, :2] = rng.normal(0.0, 1e-3, 2)
    if k % 5 == 0:  # DECA's own crops
        inverse = np.linalg.inv(crop.crop_matrix(rng.uniform(0, 512, 2), rng.uniform(20, 600)))
    return inverse


def test_random_transforms_equal_skimage_bit_for_bit():
    rng = np.random.default_rng(0)
    photo = skimage.data.astronaut()
    bright = photo // 2 + 60  # no 0 in the image: the clip must keep the constant 0 outside it
    for k in range(120):
        image = bright if k % 4 == 1 else photo
        inverse = _random_inverse(rng, k)
        assert np.array_equal(bilinear_warp(image, inverse, 224), _skimage(image, inverse, 224)), k


@pytest.mark.parametrize(
    "inverse",
    [
        np.eye(3),  # integer positions: the ceil neighbour is the floor one
        [[1.0, 0.0, 17.0], [0.0, 1.0, -5.0], [0.0, 0.0, 1.0]],  # integer shift, partly outside
        [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]],  # reaches the last row and column exactly
        [[0.5, 0.0, 0.25], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]],  # half pixels
        [[1.0, 0.0, 5000.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],  # entirely outside: all 0
    ],
)
def test_integer_and_edge_positions_equal_skimage(inverse):
    rng = np.random.default_rng(1)
    for image in (rng.integers(0, 256, (120, 90, 3), dtype=np.uint8), rng.integers(30, 200, (64, 64, 3), np.uint8)):
        inverse = np.asarray(inverse, dtype=np.float64)
        assert np.array_equal(bilinear_warp(image, inverse, 100), _skimage(image, inverse, 100))


def test_writes_into_a_channels_last_float32_buffer_and_threads_do_not_share_scratch():
    photo = skimage.data.astronaut()
    inverses = [np.linalg.inv(crop.crop_matrix(np.array([200.0 + 9 * k, 230.0]), 250.0 + k)) for k in range(16)]
    expected = [_skimage(photo, inverse, 224).astype(np.float32) for inverse in inverses]

    def one(inverse: np.ndarray) -> np.ndarray:
        out = np.empty((224, 224, 3), np.float32)
        assert bilinear_warp(photo, inverse, 224, out=out.transpose(2, 0, 1)) is not None
        return out.transpose(2, 0, 1)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, inverses * 4))
    for k, got in enumerate(results):
        assert np.array_equal(got, expected[k % 16])

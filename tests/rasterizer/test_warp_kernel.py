"""The extension's `warp_bilinear` kernel: DECA's crop warp, bit-identical to the numpy code and to skimage."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import skimage.data
from skimage.transform import warp

from decaenv.runtime import crop
from decaenv.runtime import warp as warp_module
from decaenv.runtime.warp import bilinear_warp


def _numpy(image: np.ndarray, inverse: np.ndarray, size: int) -> np.ndarray:
    """The numpy path's (C, S, S) float32 result (the kernel is not asked: no `out`)."""
    with np.errstate(invalid="ignore"):  # (NaN positions: their integer parts are cast, then never read)
        return bilinear_warp(image, inverse, size).astype(np.float32)


def _kernel(image: np.ndarray, inverse: np.ndarray, size: int) -> np.ndarray:
    out = np.full((size, size, image.shape[2]), -7.0, np.float32)
    result = bilinear_warp(image, inverse, size, out=out.transpose(2, 0, 1))
    assert result.base is out or np.shares_memory(result, out)
    return out.transpose(2, 0, 1)


def _inverses(rng: np.random.Generator):
    for k in range(60):
        scale, angle = rng.uniform(0.3, 3.0), rng.uniform(-1.0, 1.0)
        inverse = np.array(
            [
                [scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-300, 500)],
                [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-300, 500)],
                [0.0, 0.0, 1.0],
            ]
        )
        if k % 3 == 0:  # a homography
            inverse[2, :2] = rng.normal(0.0, 1e-3, 2)
        if k % 5 == 0:  # DECA's own crops
            inverse = np.linalg.inv(crop.crop_matrix(rng.uniform(0, 512, 2), rng.uniform(20, 600)))
        yield k, inverse
    yield "identity", np.eye(3)  # integer positions
    yield "reaches the last row", np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    yield "outside", np.array([[1.0, 0.0, 5000.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    yield "nan", np.array([[np.nan, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    yield "huge", np.array([[1e300, 0.0, 0.0], [0.0, -1e300, 0.0], [0.0, 0.0, 1.0]])


def test_kernel_equals_the_numpy_code_and_skimage_bit_for_bit(built_extension):
    rng = np.random.default_rng(0)
    photo = skimage.data.astronaut()
    bright = photo // 2 + 60  # no 0 in the image: the clip must keep the constant 0 outside it
    four = np.concatenate([photo, photo[:, :, :1] // 3 + 9], axis=2)  # other channel counts
    grey = photo[:100, :130, 1:2]
    images = (photo, bright, four, grey)
    for n, (k, inverse) in enumerate(_inverses(rng)):
        image, size = images[n % 4], (224 if n % 2 else 97)
        got = _kernel(image, inverse, size)
        assert np.array_equal(got, _numpy(image, inverse, size), equal_nan=True), k
        if np.isfinite(inverse).all() and k != "huge":
            expected = warp(image / 255.0, inverse, output_shape=(size, size)).transpose(2, 0, 1)
            assert np.array_equal(got, expected.astype(np.float32)), k


def test_crops_use_the_kernel_where_it_is_loaded(built_extension, monkeypatch):
    photo = skimage.data.astronaut()
    tform = crop.crop_matrix(np.array([210.0, 190.0]), 180.0)
    calls = []
    real = warp_module._compiled_warp

    def spy(*args):
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(warp_module, "_compiled_warp", spy)
    read_only = photo.copy()
    read_only.flags.writeable = False  # (a decoded frame may be read-only: no copy, no warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = crop.warp_crop(read_only, tform)
    assert calls == [True]
    assert np.array_equal(fast, _numpy(photo, np.linalg.inv(tform), 224))
    assert bilinear_warp(photo, np.linalg.inv(tform), 224).dtype == np.float64  # no buffer: the numpy code
    assert calls == [True]
    other = np.empty((3, 224, 224), np.float32)  # C order (S, S, C) would not be: the numpy code
    assert np.array_equal(bilinear_warp(photo, np.linalg.inv(tform), 224, out=other), fast)
    assert calls == [True, False]


def test_kernel_refuses_bad_arguments_with_one_line(built_extension):
    image = torch.zeros(8, 8, 3, dtype=torch.uint8)
    inverse = torch.eye(3, dtype=torch.float64)
    out = torch.empty(4, 4, 3)
    op = torch.ops.decaenv.warp_bilinear
    for args, words in [
        ((image.float(), inverse, out), "image must be"),
        ((image, inverse.float(), out), "inverse must be"),
        ((image, inverse, torch.empty(4, 5, 3)), "out must be"),
        ((image, inverse, torch.empty(4, 4, 1)), "out must be"),
        ((image.transpose(0, 1), inverse, out), "image must be"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            op(*args)

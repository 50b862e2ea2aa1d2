"""DECA's crop rules (deca-spec §7) and landmark files."""

import numpy as np
import pytest
import scipy.io
import skimage.data
from skimage.transform import estimate_transform, warp

from decaenv.errors import InputError
from decaenv.runtime import crop


def test_bbox2point_rules():
    size, centre = crop.bbox2point(10, 110, 20, 220, "kpt68")
    assert size == pytest.approx(150 * 1.1) and centre.tolist() == [60, 120]
    size, centre = crop.bbox2point(10, 110, 20, 220, "bbox")
    assert size == 150 and centre.tolist() == [60, 120 + 0.12 * 150]
    with pytest.raises(ValueError):
        crop.bbox2point(0, 1, 0, 1, "ellipse")


def test_crop_matrix_is_decas_similarity():
    centre, old_size = np.array([200.0, 150.0]), 160.0
    P = crop.crop_matrix(centre, old_size)
    size = int(160 * 1.25)
    assert P[0, 0] == pytest.approx(223 / size) and abs(P[0, 1]) < 1e-12
    assert P[0, 2] == pytest.approx(-(200 - size / 2) * 223 / size)
    src = np.array(
        [[200 - size / 2, 150 - size / 2], [200 - size / 2, 150 + size / 2], [200 + size / 2, 150 - size / 2]]
    )
    ref = estimate_transform("similarity", src, np.array([[0, 0], [0, 223], [223, 0]])).params
    assert np.array_equal(P, ref)


@pytest.mark.parametrize(
    "box,kind",
    [((179, 60, 268, 173), "bbox"), ((-80, -60, 300, 260), "kpt68"), ((450, 430, 600, 590), "bbox"), (None, "")],
)
def test_warp_equals_skimage_on_the_whole_image(box, kind):
    image = skimage.data.astronaut()
    c = crop.make_crop(image, box, kind, "test")
    ref = warp(image / 255.0, np.linalg.inv(c.tform), output_shape=(224, 224)).transpose(2, 0, 1)
    assert c.image.dtype == np.float32 and c.image.shape == (3, 224, 224)
    assert np.abs(c.image - ref.astype(np.float32)).max() < 1e-6


@pytest.mark.parametrize(
    "tform",
    [
        [[0.9, 0.2, -40.0], [-0.15, 1.1, -20.0], [0.0, 0.0, 1.0]],  # affine, not a similarity
        [[0.8, 0.1, -30.0], [0.05, 0.9, -25.0], [2e-4, -1e-4, 1.0]],  # projective
    ],
)
def test_warp_crop_equals_skimage_for_any_transform(tform):
    image = skimage.data.astronaut()
    tform = np.array(tform)
    ref = warp(image / 255.0, np.linalg.inv(tform), output_shape=(224, 224)).transpose(2, 0, 1)
    assert np.abs(crop.warp_crop(image, tform) - ref.astype(np.float32)).max() < 1e-6


def test_crop_entirely_outside_is_black():
    c = crop.make_crop(np.full((64, 64, 3), 200, np.uint8), (1000, 1000, 1100, 1100), "bbox", "test")
    assert not c.image.any()


def test_iscrop_false_uses_decas_corner_points():
    image = np.zeros((300, 200, 3), np.uint8)
    c = crop.make_crop(image, None, "", "full")
    ref = estimate_transform(
        "similarity", np.array([[0, 0], [0, 299], [199, 0]]), np.array([[0, 0], [0, 223], [223, 0]])
    ).params
    assert np.allclose(c.tform, ref) and c.original_size == (300, 200)


def test_landmark_files(tmp_path):
    pts = np.stack([np.linspace(10, 100, 68), np.linspace(20, 90, 68)], 1)
    txt = tmp_path / "a.txt"
    np.savetxt(txt, pts)
    assert np.allclose(crop.read_landmark_file(txt), pts)
    mat = tmp_path / "a.mat"
    scipy.io.savemat(mat, {"pt3d_68": np.concatenate([pts, np.zeros((68, 1))], 1).T})
    assert np.allclose(crop.read_landmark_file(mat), pts)
    assert crop.landmarks_box(pts) == (10.0, 20.0, 100.0, 90.0)


@pytest.mark.parametrize("content,message", [("1 2\n3 4\n", "expected 68 points"), ("x y\n", "not readable")])
def test_bad_landmark_files(tmp_path, content, message):
    path = tmp_path / "a.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        crop.read_landmark_file(path)


def test_mat_without_pt3d_68(tmp_path):
    path = tmp_path / "a.mat"
    scipy.io.savemat(path, {"other": np.zeros(3)})
    with pytest.raises(InputError, match="pt3d_68"):
        crop.read_landmark_file(path)

"""FLAME on the synthetic data dir: zero codes give the template exactly; landmarks follow the embedding."""

import math

import numpy as np
import pytest
import torch

from decaenv.errors import DataError
from decaenv.loaders.flame import load_flame, preferred_flame_file
from decaenv.runtime.flame import FLAME, load_landmark_embedding


@pytest.fixture(scope="module")
def flame(synthetic_data_dir):
    model = load_flame(preferred_flame_file(synthetic_data_dir))
    return FLAME(model, load_landmark_embedding(synthetic_data_dir / "landmark_embedding.npy")), model


def test_zero_codes_give_v_template_exactly(flame):
    layer, model = flame
    out = layer(torch.zeros(3, 100), torch.zeros(3, 50), torch.zeros(3, 6))
    expected = torch.from_numpy(model.v_template.astype(np.float32))
    for b in range(3):
        assert torch.equal(out.vertices[b], expected)
    verts, lmk2d, lmk3d = out  # DECA's tuple order
    assert verts.shape == (3, 5023, 3) and lmk2d.shape == (3, 68, 3) and lmk3d.shape == (3, 68, 3)


def test_defaults_for_missing_expression_and_pose(flame):
    layer, _ = flame
    shape = torch.randn(2, 100) * 0.5
    a = layer(shape)
    b = layer(shape, torch.zeros(2, 50), torch.zeros(2, 6))
    assert torch.equal(a.vertices, b.vertices)


def test_shape_space_uses_first_100_and_expression_from_300(flame):
    layer, model = flame
    beta = torch.zeros(1, 100)
    beta[0, 7] = 1.0
    psi = torch.zeros(1, 50)
    psi[0, 3] = 1.0
    out = layer(beta, psi).vertices[0].double()
    expected = model.v_template + model.shapedirs[:, :, 7] + model.shapedirs[:, :, 303]
    assert np.allclose(out.numpy(), expected, atol=1e-5)


def _bary(vertices, faces, face_idx, bary):
    return sum(bary[:, i : i + 1] * vertices[faces[face_idx, i]] for i in range(3))


@pytest.mark.parametrize("yaw_deg,row", [(0, 0), (20, 20), (-20, 59)])
def test_landmarks_use_dynamic_contour_rows(flame, synthetic_data_dir, yaw_deg, row):
    layer, model = flame
    emb = load_landmark_embedding(synthetic_data_dir / "landmark_embedding.npy")
    pose = torch.zeros(1, 6)
    pose[0, 1] = math.radians(yaw_deg)
    out = layer(torch.zeros(1, 100), torch.zeros(1, 50), pose)
    verts = out.vertices[0].double().numpy()
    contour = _bary(verts, model.f, emb["dynamic_lmk_faces_idx"][row], emb["dynamic_lmk_bary_coords"][row])
    inner = _bary(verts, model.f, emb["static_lmk_faces_idx"], emb["static_lmk_bary_coords"])
    full = _bary(verts, model.f, emb["full_lmk_faces_idx"][0], emb["full_lmk_bary_coords"][0])
    assert np.allclose(out.landmarks2d[0].numpy(), np.concatenate([contour, inner]), atol=1e-5)
    assert np.allclose(out.landmarks3d[0].numpy(), full, atol=1e-5)


def test_bad_landmark_embedding(tmp_path):
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(DataError, match="not DECA's"):
        load_landmark_embedding(path)

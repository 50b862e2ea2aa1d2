"""The dense detail mesh: DECA's UV-grid triangulation and `texture_data_256.npy` (deca-spec §6.1, §6.9)."""

import logging

import numpy as np
import pytest

from decaenv.meshio import read_obj
from decaenv.runtime import mesh, writers
from decaenv.runtime.assets import load_dense_template, load_topology, validate_dense_template

DECA_DENSE_VERTICES = 59315


def test_generate_triangles_matches_decas_loop():
    tris = mesh.generate_triangles(256, 256)
    assert tris.shape == (122990, 3)
    h = w = 256
    expected = []
    for x in range(2, w - 1 - 2):
        for y in range(5, h - 1 - 5):
            expected.append([y * w + x, y * w + x + 1, (y + 1) * w + x])
            expected.append([y * w + x + 1, (y + 1) * w + x + 1, (y + 1) * w + x])
            if len(expected) >= 1000:
                break
        if len(expected) >= 1000:
            break
    assert np.array_equal(tris[:1000], np.array(expected)[:, [0, 2, 1]])


def _deca_format_template(n_valid: int, n_flame_faces: int, flame_f: np.ndarray, seed: int = 0):
    """A texture_data_256.npy dict in DECA's real layout (the whole 256x256 grid in x_coords/y_coords, column-major
    texel centres as FLAME's generator writes them) with exactly `n_valid` valid texels (columns 10.. of the grid)."""
    rng = np.random.default_rng(seed)
    grid = np.arange(256 * 256)
    ids = np.arange(10 * 256, 10 * 256 + n_valid)  # grid id = col * 256 + row
    index = np.full(256 * 256, -1)
    index[ids] = np.arange(n_valid)
    p = ids[(ids % 256 < 255) & (ids // 256 < 255)]
    quads = np.stack([index[p], index[p + 1], index[p + 256], index[p + 257]], 1)
    quads = quads[(quads >= 0).all(1)]
    f = np.concatenate([quads[:, [0, 1, 2]], quads[:, [2, 1, 3]]])
    bary = rng.random((n_valid, 3))
    return {"img_size": 256, "f": f.astype(np.int64), "x_coords": grid // 256 + 0.5,
            "y_coords": grid % 256 + 0.5, "valid_pixel_ids": ids,
            "valid_pixel_3d_faces": flame_f[rng.integers(0, n_flame_faces, n_valid)],
            "valid_pixel_b_coords": bary / bary.sum(1, keepdims=True)}


def test_dense_mesh_has_59315_vertices_with_a_deca_format_template(synthetic_data_dir, tmp_path):
    topo = load_topology(synthetic_data_dir / "head_template.obj", 5023)
    path = tmp_path / "texture_data_256.npy"
    np.save(path, np.array(_deca_format_template(DECA_DENSE_VERTICES, len(topo.faces), topo.faces), dtype=object),
            allow_pickle=True)
    template, source = load_dense_template(path, topo, 256, synthetic_data_dir / "head_template.obj")
    assert source == "file"
    rng = np.random.default_rng(1)
    verts = rng.normal(size=(5023, 3)).astype(np.float32)
    normals = rng.normal(size=(5023, 3)).astype(np.float32)
    disp = rng.normal(scale=0.001, size=(256, 256))
    texture = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    dense, colours, faces = mesh.upsample_mesh(verts, normals, disp, texture, template)
    assert dense.shape == (DECA_DENSE_VERTICES, 3) and dense.dtype == np.float64
    assert colours.shape == (DECA_DENSE_VERTICES, 3) and colours.dtype == np.uint8
    k = 1234
    f3, b = template["valid_pixel_3d_faces"][k], template["valid_pixel_b_coords"][k]
    point = sum(b[i] * verts[f3[i]].astype(np.float64) for i in range(3))
    normal = sum(b[i] * normals[f3[i]].astype(np.float64) for i in range(3))
    g = template["valid_pixel_ids"][k]
    y, x = int(template["y_coords"][g]), int(template["x_coords"][g])
    assert np.allclose(dense[k], point + disp[y, x] * normal / np.linalg.norm(normal))
    assert np.array_equal(colours[k], texture[y, x])
    obj = tmp_path / "x_detail.obj"
    obj.write_text(writers.detail_obj_text(dense, colours, faces))
    parsed = read_obj(obj)
    assert parsed.v.shape == (DECA_DENSE_VERTICES, 3) and np.allclose(parsed.v, dense)
    assert np.array_equal(parsed.f, faces)
    first = obj.read_text().splitlines()[0].split()
    assert first[0] == "v" and [int(c) for c in first[4:]] == colours[0].tolist()


def test_template_derived_from_the_uv_layout_when_absent(synthetic_data_dir, tmp_path, caplog):
    topo = load_topology(synthetic_data_dir / "head_template.obj", 5023)
    with caplog.at_level(logging.WARNING, logger="decaenv"):
        template, source = load_dense_template(tmp_path / "texture_data_256.npy", topo, 256,
                                               synthetic_data_dir / "head_template.obj")
    assert source == "derived from head_template.obj"
    assert "deriving the detail-mesh template" in caplog.text
    checked = validate_dense_template(template, tmp_path / "derived")
    assert len(checked["x_coords"]) == 65536 and 20000 < len(checked["valid_pixel_ids"]) < 65536
    assert checked["valid_pixel_3d_faces"].max() < 5023


def test_inconsistent_template_is_refused(tmp_path):
    from decaenv.errors import DataError

    with pytest.raises(DataError, match="lacks"):
        validate_dense_template({"img_size": 256}, tmp_path / "t.npy")
    bad = {"img_size": 256, "f": np.array([[0, 1, 5]]), "x_coords": np.zeros(3), "y_coords": np.zeros(3),
           "valid_pixel_ids": np.zeros(3), "valid_pixel_3d_faces": np.zeros((3, 3)), "valid_pixel_b_coords": np.zeros((3, 3))}
    with pytest.raises(DataError, match="indices must be integers"):
        validate_dense_template(bad, tmp_path / "t.npy")

"""`texture_data_256.npy` in DECA's real layout (deca-spec §6.1, §6.9): the synthetic file, decaenv's dense mesh
against a direct transcription of DECA's indexing, one validator for fetch, the doctor and the runtime."""

import shutil

import numpy as np
import pytest

from decaenv.doctor import subsystems
from decaenv.errors import DataError, DecaenvError
from decaenv.fetch.manifest import load_manifest
from decaenv.fetch.validators import validate
from decaenv.loaders.safe_pickle import load_object_npy
from decaenv.runtime import mesh
from decaenv.runtime.assets import load_dense_template, load_topology
from decaenv.uvlayout import validate_dense_template


def _spec_upsample(vertices, normals, disp, texture, t):
    """deca-spec §6.9 written out texel by texel: g = valid_pixel_ids[k], value at
    D[int(y_coords[g]), int(x_coords[g])], vertex = Σ b·v[F] + d · normalise(Σ b·n[F])."""
    out_v, out_c = [], []
    for k in range(len(t["valid_pixel_ids"])):
        tri, b = t["valid_pixel_3d_faces"][k], t["valid_pixel_b_coords"][k]
        p = b[0] * vertices[tri[0]] + b[1] * vertices[tri[1]] + b[2] * vertices[tri[2]]
        n = b[0] * normals[tri[0]] + b[1] * normals[tri[1]] + b[2] * normals[tri[2]]
        n = n / np.sqrt((n * n).sum())
        g = t["valid_pixel_ids"][k]
        row, col = int(t["y_coords"][g]), int(t["x_coords"][g])
        out_v.append(p + disp[row, col] * n)
        out_c.append(texture[row, col])
    return np.array(out_v), np.array(out_c)


@pytest.fixture(scope="module")
def template(synthetic_data_dir):
    return load_object_npy(synthetic_data_dir / "texture_data_256.npy")


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(7)
    return (
        rng.normal(size=(5023, 3)),
        rng.normal(size=(5023, 3)),
        rng.normal(scale=1e-3, size=(256, 256)),
        rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
    )


def test_synthetic_file_is_decas_full_grid_layout(template):
    assert len(template["x_coords"]) == len(template["y_coords"]) == 256 * 256
    assert template["valid_pixel_ids"].max() < 256 * 256
    assert (
        len(template["valid_pixel_ids"])
        == len(template["valid_pixel_3d_faces"])
        == len(template["valid_pixel_b_coords"])
    )
    validate_dense_template(template, n_vertices=5023, size=256)


def test_dense_mesh_equals_the_spec_transcription(template, inputs):
    vertices, normals, disp, texture = inputs
    dense, colours, faces = mesh.upsample_mesh(vertices, normals, disp, texture, template)
    want_v, want_c = _spec_upsample(vertices, normals, disp, texture, template)
    np.testing.assert_allclose(dense, want_v, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(colours, want_c)
    np.testing.assert_array_equal(faces, template["f"])
    assert (
        disp[
            template["y_coords"][template["valid_pixel_ids"]].astype(int),
            template["x_coords"][template["valid_pixel_ids"]].astype(int),
        ].std()
        > 0
    )  # texels really vary


def test_no_grid_ordering_is_assumed(template, inputs):
    """Permute the grid (a row-major file, or any order): same texels through valid_pixel_ids, same mesh."""
    vertices, normals, disp, texture = inputs
    rng = np.random.default_rng(3)
    perm = rng.permutation(len(template["x_coords"]))  # new grid slot j holds old grid id perm[j]
    where = np.empty_like(perm)
    where[perm] = np.arange(len(perm))
    shuffled = dict(
        template,
        x_coords=template["x_coords"][perm],
        y_coords=template["y_coords"][perm],
        valid_pixel_ids=where[template["valid_pixel_ids"]],
    )
    validate_dense_template(shuffled, n_vertices=5023)
    a = mesh.upsample_mesh(vertices, normals, disp, texture, template)
    b = mesh.upsample_mesh(vertices, normals, disp, texture, shuffled)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def _variants(t):
    """(name, dict, usable by DECA's upsample_mesh?)"""
    n = len(t["valid_pixel_ids"])
    rows, cols = t["y_coords"][t["valid_pixel_ids"]], t["x_coords"][t["valid_pixel_ids"]]
    old = dict(
        t,
        x_coords=cols.astype(np.int64),
        y_coords=rows.astype(np.int64),
        valid_pixel_ids=(rows.astype(np.int64) * 256 + cols.astype(np.int64)),
    )
    nan_bary = dict(t, valid_pixel_b_coords=np.where(np.arange(n)[:, None] == 5, np.nan, t["valid_pixel_b_coords"]))
    return [
        ("real layout", t, True),
        (
            "row-major grid ids",
            dict(
                t,
                x_coords=np.arange(65536) % 256 + 0.5,
                y_coords=np.arange(65536) // 256 + 0.5,
                valid_pixel_ids=(t["valid_pixel_ids"] % 256) * 256 + t["valid_pixel_ids"] // 256,
            ),
            True,
        ),
        ("x_coords with N entries (the old synthetic layout)", old, False),
        ("f outside N", dict(t, f=np.vstack([t["f"], [[0, 1, n]]])), False),
        ("non-finite barycentrics", nan_bary, False),
        ("unequal coordinate grids", dict(t, y_coords=t["y_coords"][:-1]), False),
        ("per-texel arrays of different lengths", dict(t, valid_pixel_b_coords=t["valid_pixel_b_coords"][:-1]), False),
        ("float grid ids", dict(t, valid_pixel_ids=t["valid_pixel_ids"].astype(np.float64)), False),
        ("3d faces beyond FLAME", dict(t, valid_pixel_3d_faces=t["valid_pixel_3d_faces"] + 5023), False),
        ("missing key", {k: v for k, v in t.items() if k != "f"}, False),
        ("not a dict", np.arange(3), False),
    ]


def _runtime_usable(path, topology, synthetic_data_dir):
    try:
        load_dense_template(path, topology, 256, synthetic_data_dir / "head_template.obj")
        return True, ""
    except DataError as exc:
        return False, exc.one_line()


def _fetch_usable(path, entry):
    try:
        validate(path, entry.validator)
        return True, ""
    except DecaenvError as exc:
        return False, exc.one_line()


def test_fetch_doctor_and_runtime_agree_on_every_file(template, synthetic_data_dir, tmp_path):
    topology = load_topology(synthetic_data_dir / "head_template.obj", 5023)
    entry = next(e for e in load_manifest().entries if e.dest == "texture_data_256.npy")
    for i, (name, value, usable) in enumerate(_variants(template)):
        data = tmp_path / f"d{i}"
        data.mkdir()
        path = data / "texture_data_256.npy"
        np.save(path, np.array(value, dtype=object) if isinstance(value, dict) else value, allow_pickle=True)
        runtime_ok, runtime_msg = _runtime_usable(path, topology, synthetic_data_dir)
        fetch_ok, fetch_msg = _fetch_usable(path, entry)
        row = next(f for f in subsystems.manifest_status(str(data))["files"] if f["dest"] == path.name)
        doctor_ok = row["status"] in ("present", "verified", "hash-unknown")
        assert (runtime_ok, fetch_ok, doctor_ok) == (usable,) * 3, (name, runtime_msg, fetch_msg, row)
        if not usable:
            for msg in (runtime_msg, fetch_msg, row["detail"]):
                assert "\n" not in msg and "texture_data_256.npy" in msg, (name, msg)


@pytest.mark.slow  # a CLI reconstruction
def test_reconstruct_writes_the_detail_mesh_with_a_real_layout_file(synthetic_data_dir, tmp_path):
    """End to end through DECA's indexing: _detail.obj has one vertex per valid texel of the file."""
    from decaenv.runtime import DECA
    from decaenv.runtime.item_meshes import item_meshes

    deca = DECA(data_dir=synthetic_data_dir, device="cpu")
    assert deca.dense_template_source == "file"
    import torch

    images = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        codedict = deca.encode(images)
        opdict, _ = deca.decode(codedict)
    meshes = item_meshes(deca, opdict, 0)
    assert meshes["detail"][0].shape == (len(deca.dense_template["valid_pixel_ids"]), 3)
    assert np.isfinite(meshes["detail"][0]).all()


def test_copying_a_deca_checkout_data_dir_keeps_the_layout(synthetic_data_dir, tmp_path):
    """What DECA's own demo reads: np.load(..., allow_pickle=True, encoding='latin1').item()."""
    shutil.copy(synthetic_data_dir / "texture_data_256.npy", tmp_path / "t.npy")
    raw = np.load(tmp_path / "t.npy", allow_pickle=True, encoding="latin1").item()
    ids = raw["valid_pixel_ids"]
    rows, cols = raw["y_coords"][ids].astype(int), raw["x_coords"][ids].astype(int)  # DECA's indexing, no IndexError
    assert rows.min() >= 0 and cols.max() < 256

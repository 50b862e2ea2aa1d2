"""FLAME without chumpy: bit-identical arrays, validation, npz conversion."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from decaenv.errors import DataError
from decaenv.loaders import flame as flame_loader

pytest.importorskip("scipy")


@pytest.fixture(scope="module")
def written(procedural_data_dir):
    """A full-size synthetic FLAME pickle (400 components, 53 MB: the session's `procedural_data_dir` one, read
    in place) and the exact arrays that went into it (built again as `make_assets` builds them, and checked
    against the file's bytes): for the tests of DECA compatibility; the others use the 7 MB
    `mini_flame_pickle`."""
    from decaenv.synthetic import flame, topology

    arrays = flame.flame_arrays(topology.procedural_head(), np.random.default_rng([0, 0]))  # make_assets(seed=0)
    path = procedural_data_dir / "generic_model.pkl"
    assert flame.flame_pickle_bytes(arrays) == path.read_bytes(), "make_assets builds FLAME otherwise now"
    return path, arrays


def test_pickle_loads_bit_identical_without_chumpy(written):
    path, arrays = written
    assert "chumpy" not in sys.modules
    model = flame_loader.load_flame(path)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        got = getattr(model, key)
        assert got.dtype == arrays[key].dtype and np.array_equal(got, arrays[key]), key
    assert np.array_equal(model.f, arrays["f"].astype(np.int64))
    assert np.array_equal(model.kintree_table, arrays["kintree_table"])
    assert model.kind == "generic" and model.n_components == 400
    assert flame_loader.deca_compatibility(model) == []
    assert "chumpy" not in sys.modules


def test_loader_does_not_import_chumpy_or_scipy(written):
    code = (
        "import sys; from decaenv.loaders.flame import load_flame; "
        f"m = load_flame({str(written[0])!r}); "
        "print('chumpy' in sys.modules, 'scipy' in sys.modules, m.J_regressor.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "(5,", "5023)"]


def test_npz_round_trip_and_preference(mini_flame_pickle, tmp_path):
    pkl = tmp_path / "generic_model.pkl"
    shutil.copyfile(mini_flame_pickle[0], pkl)
    npz = flame_loader.convert_to_npz(pkl, tmp_path / "generic_model.npz")
    a, b = flame_loader.load_flame(pkl), flame_loader.load_flame(npz)
    for key in flame_loader.REQUIRED:
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert b.kind == "generic" and flame_loader.npz_matches_source(npz, pkl)
    with np.load(npz, allow_pickle=False) as data:  # no object arrays inside
        assert all(data[k].dtype != object for k in data.files)
    assert flame_loader.preferred_flame_file(tmp_path) == npz
    os.utime(npz, (1, 1))  # older than the pickle, but provably converted from it (recorded sha256)
    assert flame_loader.preferred_flame_file(tmp_path) == npz


def test_missing_key_and_wrong_shape(tmp_path, mini_flame_pickle):
    _, arrays = mini_flame_pickle
    bad = dict(arrays)
    del bad["posedirs"]
    np.savez(tmp_path / "a.npz", **bad)
    with pytest.raises(DataError, match="lacks posedirs"):
        flame_loader.load_flame(tmp_path / "a.npz")
    bad = dict(arrays, weights=arrays["weights"][:100])
    np.savez(tmp_path / "b.npz", **bad)
    with pytest.raises(DataError, match="weights has shape"):
        flame_loader.load_flame(tmp_path / "b.npz")


def test_kind_and_compatibility(tmp_path, mini_flame_pickle):
    _, arrays = mini_flame_pickle
    np.savez(tmp_path / "flame2023.npz", **arrays)
    model = flame_loader.load_flame(tmp_path / "flame2023.npz")
    assert model.kind == "flame2023"
    assert any("FLAME 2023" in r for r in flame_loader.deca_compatibility(model))
    small = dict(arrays, shapedirs=arrays["shapedirs"][:, :, :10])
    np.savez(tmp_path / "female_model.npz", **small)
    model = flame_loader.load_flame(tmp_path / "female_model.npz")
    assert model.kind == "female" and any("components" in r for r in flame_loader.deca_compatibility(model))


def test_missing_file_message(tmp_path):
    with pytest.raises(DataError, match="does not exist") as info:
        flame_loader.load_flame(tmp_path / "generic_model.pkl")
    assert "decaenv fetch" in info.value.one_line()

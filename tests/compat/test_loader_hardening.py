"""The chumpy-free loader against odd and hostile files: other pickle protocols, damaged sparse matrices,
wrong dtypes, npz recognised by content, and which FLAME file the runtime prefers."""

import hashlib
import io
import json
import os
import pickle
import shutil

import numpy as np
import pytest

from decaenv.errors import DataError, UnsafeContentError
from decaenv.loaders import flame as flame_loader
from decaenv.loaders._standins import sparse_class
from decaenv.loaders.legacy_pickle import dumps
from decaenv.loaders.safe_pickle import SafeUnpickler, load_pickle


class _Ch:
    def __init__(self, x):
        self.__dict__.update({"x": x, "_dirty_vars": {"x"}})


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_pickle_protocol(protocol):
    data = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": {1, 2}, "c": np.float64(2.5)}
    got = SafeUnpickler(io.BytesIO(pickle.dumps(data, protocol=protocol))).load()
    assert np.array_equal(got["a"], data["a"]) and got["a"].dtype == np.float32
    assert got["s"] == {1, 2} and got["c"] == 2.5


@pytest.mark.parametrize("protocol", [1, 2])
def test_old_protocol_chumpy_objects(protocol):
    x = np.random.default_rng(0).random((4, 3, 2))
    blob = dumps({"shapedirs": _Ch(x)}, protocol=protocol, impersonate={id(_Ch): ("chumpy.ch", "Ch")})
    got = SafeUnpickler(io.BytesIO(blob)).load()
    assert np.array_equal(np.asarray(got["shapedirs"]), x)


def test_chumpy_expression_is_a_clear_error():
    blob = dumps({"v": _Ch(np.ones(3))}, protocol=2, impersonate={id(_Ch): ("chumpy.ch_ops", "add")})
    obj = SafeUnpickler(io.BytesIO(blob)).load()["v"]
    obj.__dict__.pop("x")
    with pytest.raises(DataError, match="chumpy expression"):
        obj.array


@pytest.mark.parametrize("fmt, kind", [("csc", "matrix"), ("csr", "matrix"), ("coo", "matrix"), ("csc", "array")])
def test_sparse_stand_ins_match_scipy(fmt, kind):
    sp = pytest.importorskip("scipy.sparse")
    dense = np.zeros((5, 7))
    dense[[0, 2, 4, 4], [1, 6, 0, 3]] = [1.5, -2.0, 3.25, 4.0]
    real = getattr(sp, f"{fmt}_{kind}")(dense)
    got = SafeUnpickler(io.BytesIO(pickle.dumps(real, protocol=2))).load()
    assert type(got).__name__ == f"{fmt}_{kind}" and "scipy" not in type(got).__module__
    assert np.array_equal(got.toarray(), dense)


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda s: s.update(indices=np.array([0, 9, 1, 2])), "outside its shape"),
        (lambda s: s.update(indptr=np.array([0, 5, 1, 2, 3, 4, 4, 4])), "inconsistent"),
        (lambda s: s.update(indptr=np.array([0, 1])), "inconsistent"),
        (lambda s: s.update(data=np.array(["a", "b", "c", "d"], dtype=object)), "malformed 'data'"),
        (lambda s: s.pop("indices"), "lacks 'indices'"),
        (lambda s: s.update(_shape=(10**6, 10**6)), "implausible shape"),
        (lambda s: s.update(_shape="x"), "no valid shape"),
    ],
)
def test_damaged_sparse_matrix_is_a_data_error(breakage, message):
    state = {
        "_shape": (5, 7),
        "data": np.array([1.0, 2.0, 3.0, 4.0]),
        "indices": np.array([0, 4, 2, 4]),
        "indptr": np.array([0, 1, 2, 2, 3, 3, 3, 4]),
        "maxprint": 50,
    }
    breakage(state)
    matrix = sparse_class("csc")()
    matrix.__setstate__(state)
    with pytest.raises(DataError, match=message):
        matrix.toarray()


def test_object_and_string_arrays_are_refused(tmp_path, flame_pickle):
    _, arrays = flame_pickle
    bad = dict(arrays, weights=arrays["weights"].astype(str))
    np.savez(tmp_path / "generic_model.npz", **bad)
    with pytest.raises(DataError, match="'weights' holds <U"):
        flame_loader.load_flame(tmp_path / "generic_model.npz")
    bad = dict(arrays, f=arrays["f"].astype(np.float64))
    np.savez(tmp_path / "b.npz", **bad)
    with pytest.raises(DataError, match="'f' holds float64 values, expected integers"):
        flame_loader.load_flame(tmp_path / "b.npz")


def test_empty_model_is_a_data_error(tmp_path, flame_pickle):
    _, arrays = flame_pickle
    np.savez(tmp_path / "e.npz", **dict(arrays, f=np.zeros((0, 3), dtype=np.int64)))
    with pytest.raises(DataError, match="F > 0"):
        flame_loader.load_flame(tmp_path / "e.npz")


def test_npz_is_recognised_by_content_not_name(tmp_path, flame_pickle):
    path, arrays = flame_pickle
    out = flame_loader.convert_to_npz(path, tmp_path / "model.bin")
    model = flame_loader.load_flame(out, kind="generic")
    assert np.array_equal(model.shapedirs, arrays["shapedirs"])
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="npz"):
        flame_loader.load_flame(tmp_path / "broken.npz")


def test_malicious_pickle_in_a_flame_file_does_not_run(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(UnsafeContentError, match="system"):
        flame_loader.load_flame(path)
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=5))
    with pytest.raises(UnsafeContentError):
        load_pickle(path)
    assert not marker.exists()


@pytest.fixture
def data_dir(tmp_path, flame_pickle):
    shutil.copyfile(flame_pickle[0], tmp_path / "generic_model.pkl")
    return tmp_path


def test_preferred_file_follows_the_recorded_source(data_dir):
    pkl, npz = data_dir / "generic_model.pkl", data_dir / "generic_model.npz"
    assert flame_loader.preferred_flame_file(data_dir) == pkl  # no npz yet
    flame_loader.convert_to_npz(pkl, npz)
    assert flame_loader.preferred_flame_file(data_dir) == npz
    os.utime(pkl, (2_000_000_000, 2_000_000_000))  # re-extracted / copied: newer mtime, same bytes
    assert flame_loader.preferred_flame_file(data_dir) == npz
    blob = bytearray(pkl.read_bytes())
    blob[-10] ^= 1  # the pickle was replaced by another model ...
    pkl.write_bytes(bytes(blob))
    os.utime(pkl, (1, 1))  # ... whose archive carries an old date: the stale npz is newer, yet not used
    assert flame_loader.preferred_flame_file(data_dir) == pkl
    pkl.unlink()
    assert flame_loader.preferred_flame_file(data_dir) == npz  # the npz alone


def test_preferred_file_without_record_uses_mtime_and_skips_broken(data_dir, flame_pickle):
    pkl, npz = data_dir / "generic_model.pkl", data_dir / "generic_model.npz"
    np.savez(npz, **flame_pickle[1])  # made by another tool: no decaenv record
    os.utime(pkl, (1, 1))
    assert flame_loader.preferred_flame_file(data_dir) == npz
    os.utime(npz, (0, 0))
    assert flame_loader.preferred_flame_file(data_dir) == pkl
    npz.write_bytes(b"not a zip")
    os.utime(npz, (3_000_000_000, 3_000_000_000))
    assert flame_loader.preferred_flame_file(data_dir) == pkl


def test_convert_cli(data_dir, capsys):
    from decaenv.cli import main

    assert main(["convert", "flame", str(data_dir / "generic_model.pkl")]) == 0
    out = capsys.readouterr().out
    assert f"wrote {data_dir / 'generic_model.npz'}" in out and "5023 vertices" in out
    assert (
        main(
            [
                "convert",
                "flame",
                str(data_dir / "generic_model.pkl"),
                "-o",
                str(data_dir / "generic_model.npz"),
                "--json",
            ]
        )
        == 0
    )  # its own npz is overwritten
    info = json.loads(capsys.readouterr().out)
    assert not info["deca_compatible"] and info["components"] == 20 and len(info["source_sha256"]) == 64
    foreign = data_dir / "foreign.npz"
    foreign.write_bytes(b"keep me")
    assert main(["convert", "flame", str(data_dir / "generic_model.pkl"), "-o", str(foreign)]) == 1
    assert "was not written by decaenv" in capsys.readouterr().err and foreign.read_bytes() == b"keep me"
    assert main(["convert", "flame", str(data_dir / "generic_model.pkl"), "-o", str(foreign), "--force"]) == 0
    assert main(["convert", "flame", str(data_dir / "missing.pkl")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("decaenv: error: FLAME model") and "does not exist" in err[-1]
    assert main(["convert", "flame", str(data_dir / "generic_model.pkl"), "--kind", "alien"]) == 1
    assert not list(data_dir.glob(".*partial"))


def test_convert_cli_reports_a_full_size_flame_deca_compatible(tmp_path, procedural_data_dir, capsys):
    """The mechanics above run on the 20-component mini FLAME; DECA's 400 components need the full-size one
    (hard-linked: `convert` only reads its source)."""
    from _support.assets import link_or_copy

    from decaenv.cli import main

    pkl = tmp_path / "generic_model.pkl"
    link_or_copy(procedural_data_dir / "generic_model.pkl", pkl)
    assert main(["convert", "flame", str(pkl), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["deca_compatible"] and info["components"] == 400 and len(info["source_sha256"]) == 64
    assert info["source_sha256"] == hashlib.sha256(pkl.read_bytes()).hexdigest()
    assert flame_loader.npz_matches_source(tmp_path / "generic_model.npz", pkl)


def test_convert_refuses_a_malicious_pickle_and_leaves_nothing(tmp_path, capsys):
    from decaenv.cli import main

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    src = tmp_path / "generic_model.pkl"
    src.write_bytes(pickle.dumps({"f": Evil()}, protocol=2))
    assert main(["convert", "flame", str(src)]) == 1
    assert "refusing to load pickle global" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generic_model.pkl"]


def test_convert_to_an_unwritable_place_is_one_line(data_dir, capsys):
    from decaenv.cli import main

    assert main(["convert", "flame", str(data_dir / "generic_model.pkl"), "-o", "/proc/decaenv/x.npz"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("decaenv: error: cannot write /proc/decaenv/x.npz")
    assert main(["convert", "flame", str(data_dir)]) == 1
    assert "is a folder, not a file" in capsys.readouterr().err

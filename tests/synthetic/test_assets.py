"""Synthetic DECA data dirs: official formats, the real-world failure reproduced, determinism."""

import hashlib
import importlib.util
import io
import pickle
import pickletools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _support.assets import public_topology_dir

torch = pytest.importorskip("torch")

from decaenv.deca_layout import PUBLIC_FILES, checkpoint_layout
from decaenv.synthetic import make_assets

EXPECTED = set(PUBLIC_FILES) | {"generic_model.pkl", "deca_model.tar", "texture_data_256.npy"}


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _globals(data: bytes) -> set:
    return {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def test_complete_layout(synthetic_data_dir):
    assert {p.name for p in synthetic_data_dir.iterdir()} == EXPECTED


def test_flame_pickle_needs_chumpy_like_the_real_file(synthetic_data_dir):
    data = (synthetic_data_dir / "generic_model.pkl").read_bytes()
    assert data[:2] == b"\x80\x02"  # protocol 2, like FLAME 2020
    assert _globals(data) == {
        "numpy.core.multiarray _reconstruct",
        "numpy ndarray",
        "numpy dtype",
        "chumpy.ch Ch",
        "__builtin__ set",
        "scipy.sparse.csc csc_matrix",
    }
    # Plain pickle in a fresh interpreter: the exact error FLAME users hit without chumpy, and the chumpy
    # failures of today's numpy/Python when (unfixed) chumpy 0.70 is installed.
    code = (
        f"import pickle\npickle.load(open({str(synthetic_data_dir / 'generic_model.pkl')!r}, 'rb'), encoding='latin1')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if importlib.util.find_spec("chumpy") is None:
        assert out.returncode != 0
        assert "ModuleNotFoundError: No module named 'chumpy'" in out.stderr
    elif out.returncode != 0:
        assert "chumpy" in out.stderr  # chumpy 0.70: getargspec (Python >= 3.11) or numpy aliases (>= 1.24)
    else:
        pytest.skip("a working chumpy is installed here: plain pickle loads FLAME")


class _ChumpyAsDict(pickle.Unpickler):
    """Test-only reader: chumpy's Ch as a dict holder, numpy 1 module paths mapped to numpy 2."""

    def find_class(self, module, name):
        if module == "chumpy.ch":
            return type("Ch", (), {"__setstate__": lambda self, st: self.__dict__.update(st)})
        module = {
            "numpy.core.multiarray": np.ndarray.__reduce__(np.zeros(1))[0].__module__,
            "scipy.sparse.csc": "scipy.sparse",
        }.get(module, module)
        return super().find_class(module, name)


def test_flame_content(synthetic_data_dir):
    with open(synthetic_data_dir / "generic_model.pkl", "rb") as fh:
        model = _ChumpyAsDict(fh, encoding="latin1").load()
    assert model["v_template"].shape == (5023, 3)
    assert model["f"].shape == (9976, 3) and model["f"].dtype == np.uint32
    shapedirs = model["shapedirs"].__dict__
    assert shapedirs["x"].shape == (5023, 3, 400) and shapedirs["_dirty_vars"] == {"x"}
    assert model["posedirs"].shape == (5023, 3, 36)
    assert type(model["J_regressor"]).__name__ == "csc_matrix" and model["J_regressor"].shape == (5, 5023)
    assert model["weights"].shape == (5023, 5)
    np.testing.assert_allclose(model["weights"].sum(1), 1.0)
    assert model["kintree_table"][0, 0] == 4294967295 and list(model["kintree_table"][0, 1:]) == [0, 1, 1, 1]
    np.testing.assert_allclose(model["J"], model["J_regressor"] @ model["v_template"], atol=1e-12)
    assert model["bs_style"] == "lbs" and model["bs_type"] == "lrotmin"


class _HashSink(io.RawIOBase):
    """A write-only stream that only hashes what `torch.save` writes (no 200-400 MB file on disk)."""

    def __init__(self):
        super().__init__()
        self.sha = hashlib.sha256()

    def writable(self):
        return True

    def write(self, data):
        self.sha.update(data)
        return len(data)


def _checkpoint_sha(seed: int, with_optimizer: bool) -> str:
    """sha256 of the bytes `checkpoint.write_checkpoint` writes (the same `torch.save` to a file handle)."""
    from decaenv.synthetic import checkpoint

    sink = _HashSink()
    torch.save(checkpoint.checkpoint_dict(seed, with_optimizer), sink)
    return sink.sha.hexdigest()


def test_checkpoint_loads_weights_only_with_deca_layout(synthetic_data_dir):
    ckpt = torch.load(synthetic_data_dir / "deca_model.tar", map_location="cpu", weights_only=True)
    assert set(ckpt) == {"E_flame", "E_detail", "D_detail"}  # the session's data dir has no optimizer state
    for net, layout in checkpoint_layout().items():
        assert list(ckpt[net]) == list(layout)
        for key, shape in layout.items():
            assert tuple(ckpt[net][key].shape) == shape, key
            assert torch.isfinite(ckpt[net][key].float()).all()


def test_optimizer_state_like_the_real_file_loads_weights_only():
    """DECA's real file also holds the trainer's Adam state (`opt`); it must load with weights_only=True."""
    from decaenv.synthetic import checkpoint

    buffer = io.BytesIO()
    torch.save(checkpoint.checkpoint_dict(0, with_optimizer=True), buffer)
    assert buffer.tell() > 400e6  # the real file's order of magnitude (≈434 MB)
    buffer.seek(0)
    ckpt = torch.load(buffer, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"E_flame", "E_detail", "D_detail", "opt"}
    assert len(ckpt["opt"]["param_groups"][0]["params"]) == len(ckpt["opt"]["state"])


def test_landmark_embedding_types(synthetic_data_dir):
    raw = (synthetic_data_dir / "landmark_embedding.npy").read_bytes()
    header = 10 + int.from_bytes(raw[8:10], "little")
    assert {
        "torch._utils _rebuild_tensor_v2",
        "torch.storage _load_from_bytes",
        "numpy.core.multiarray _reconstruct",
    } <= _globals(raw[header:])
    emb = np.load(synthetic_data_dir / "landmark_embedding.npy", allow_pickle=True, encoding="latin1")[()]
    assert emb["static_lmk_faces_idx"].shape == (51,) and emb["static_lmk_faces_idx"].dtype == np.int64
    assert emb["static_lmk_bary_coords"].shape == (51, 3)
    assert isinstance(emb["dynamic_lmk_faces_idx"], torch.Tensor)
    assert tuple(emb["dynamic_lmk_faces_idx"].shape) == (79, 17) and emb["dynamic_lmk_faces_idx"].dtype == torch.int64
    assert tuple(emb["dynamic_lmk_bary_coords"].shape) == (79, 17, 3)
    assert emb["full_lmk_faces_idx"].shape == (1, 68) and emb["full_lmk_bary_coords"].dtype == np.float32
    assert (emb["dynamic_lmk_faces_idx"] < 9976).all()
    np.testing.assert_allclose(emb["dynamic_lmk_bary_coords"].numpy().sum(-1), 1.0, atol=1e-5)


def test_texture_data_consistent_with_uv_layout(synthetic_data_dir):
    dense = np.load(synthetic_data_dir / "texture_data_256.npy", allow_pickle=True, encoding="latin1")[()]
    assert set(dense) == {
        "img_size",
        "f",
        "x_coords",
        "y_coords",
        "valid_pixel_ids",
        "valid_pixel_3d_faces",
        "valid_pixel_b_coords",
    }
    n = len(dense["valid_pixel_ids"])
    assert 40_000 < n < 65_536 and dense["img_size"] == 256
    # DECA's real layout, as FLAME's generator builds it: the whole 256x256 grid, column-major texel centres.
    grid = np.arange(256 * 256)
    np.testing.assert_array_equal(dense["x_coords"], grid // 256 + 0.5)
    np.testing.assert_array_equal(dense["y_coords"], grid % 256 + 0.5)
    assert dense["valid_pixel_ids"].dtype.kind == "i" and np.all(np.diff(dense["valid_pixel_ids"]) > 0)
    assert dense["f"].max() < n and dense["valid_pixel_3d_faces"].max() < 5023
    np.testing.assert_allclose(dense["valid_pixel_b_coords"].sum(1), 1.0)


def test_uv_images_and_displacement(synthetic_data_dir):
    from PIL import Image

    for name in ("uv_face_eye_mask.png", "uv_face_mask.png"):
        with Image.open(synthetic_data_dir / name) as im:
            assert im.size == (256, 256) and im.mode == "RGBA"
    with Image.open(synthetic_data_dir / "mean_texture.jpg") as im:
        assert im.size == (512, 512) and im.mode == "RGB"
    disp = np.load(synthetic_data_dir / "fixed_displacement_256.npy")
    assert disp.shape == (256, 256) and disp.dtype == np.float64 and np.abs(disp).max() < 0.002


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_other_bytes(synthetic_data_dir, tmp_path, monkeypatch):
    """Every file again from seed 0, and another seed gives other bytes. The checkpoint's and the in-memory
    files' (FLAME pickle, dense template) bytes are hashed as they are produced, not written twice: the
    files hold `sha256:<hex>` of what would have been written."""
    from decaenv.synthetic import assets, checkpoint

    monkeypatch.setattr(
        checkpoint,
        "write_checkpoint",
        lambda path, seed, opt: Path(path).write_text(_marker(_checkpoint_sha(seed, opt))),
    )
    monkeypatch.setattr(
        assets,
        "_write_bytes",
        lambda data: lambda path: Path(path).write_text(_marker(hashlib.sha256(data).hexdigest())),
    )
    again = make_assets(tmp_path / "again", seed=0, public_dir=public_topology_dir(), with_optimizer=False)
    hashed = {name for name in again.files if _hashed(tmp_path / "again" / name)}
    assert {"deca_model.tar", "generic_model.pkl", "texture_data_256.npy"} <= hashed
    for name in again.files:
        digest = _hashed(tmp_path / "again" / name) or _sha(tmp_path / "again" / name)
        assert digest == _sha(synthetic_data_dir / name), name
    other = make_assets(tmp_path / "other", seed=1, public_dir=public_topology_dir(), with_optimizer=False)
    for name in ("generic_model.pkl", "deca_model.tar"):
        assert _hashed(other.data_dir / name) not in (None, _sha(synthetic_data_dir / name)), name


def _marker(digest: str) -> str:
    return f"sha256:{digest}"


def _hashed(path: Path):
    """The digest a `sha256:<hex>` marker file stands for, or None for a file written for real."""
    if path.stat().st_size != 71:
        return None
    text = path.read_bytes()
    return text[7:].decode() if text.startswith(b"sha256:") else None


def test_procedural_topology_has_flame_counts(procedural_data_dir):
    from decaenv.meshio import read_obj

    mesh = read_obj(procedural_data_dir / "head_template.obj")
    assert mesh.v.shape == (5023, 3) and mesh.f.shape == (9976, 3) and len(mesh.ft) == 9976


def test_real_public_topology_is_copied_verbatim(shared_assets, synthetic_data_dir):
    """With DECAENV_TEST_ASSETS the session's data dir is built on DECA's public files: they are copied verbatim."""
    for name in PUBLIC_FILES:
        assert _sha(synthetic_data_dir / name) == _sha(shared_assets / "deca-data" / name)


def test_no_partial_files_left(procedural_data_dir):
    assert not [p for p in procedural_data_dir.iterdir() if p.name.endswith(".partial")]

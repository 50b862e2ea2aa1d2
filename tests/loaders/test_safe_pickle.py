"""The allowlist: genuine DECA/FLAME content loads, anything else is refused before it runs."""

import io
import os
import pickle

import numpy as np
import pytest

from decaenv.errors import DataError, UnsafeContentError
from decaenv.loaders.safe_pickle import SafeUnpickler, load_object_npy, load_pickle


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_os_system_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": _RunsCommand(marker)}, protocol=2))
    with pytest.raises(UnsafeContentError, match="refusing to load pickle global (posix|nt).system"):
        load_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(eval, protocol=2),
        pickle.dumps(__import__("subprocess").Popen, protocol=2),
        b"cbuiltins\ngetattr\n(cbuiltins\nobject\nS'__subclasses__'\ntR.",
    ],
)
def test_other_globals_refused(payload):
    with pytest.raises(UnsafeContentError):
        SafeUnpickler(io.BytesIO(payload)).load()


def test_html_page_is_named(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_text("<!DOCTYPE html><html><body>Please log in</body></html>")
    with pytest.raises(DataError, match="HTML page"):
        load_pickle(path, "FLAME model")


def test_truncated_and_empty(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"a": np.arange(1000)}, protocol=2)[:200])
    with pytest.raises(DataError, match="damaged or not a pickle"):
        load_pickle(path)
    path.write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        load_pickle(path)


def test_numpy2_style_pickle_loads(tmp_path):
    data = {"a": np.arange(5, dtype=np.float32), "b": {1, 2}, "c": np.float64(3.5)}
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    got = load_pickle(path)
    assert np.array_equal(got["a"], data["a"]) and got["b"] == {1, 2} and got["c"] == 3.5


def test_landmark_embedding_with_torch_tensors(procedural_data_dir):
    torch = pytest.importorskip("torch")
    emb = load_object_npy(procedural_data_dir / "landmark_embedding.npy")
    ref = np.load(procedural_data_dir / "landmark_embedding.npy", allow_pickle=True, encoding="latin1")[()]
    assert set(emb) == set(ref)
    for key, value in ref.items():
        if isinstance(value, torch.Tensor):
            assert isinstance(emb[key], torch.Tensor) and torch.equal(emb[key], value)
        else:
            assert np.array_equal(emb[key], value)


def test_real_landmark_embedding(shared_assets):
    pytest.importorskip("torch")
    emb = load_object_npy(shared_assets / "deca-data" / "landmark_embedding.npy")
    assert tuple(emb["dynamic_lmk_faces_idx"].shape) == (79, 17)
    assert emb["full_lmk_faces_idx"].shape == (1, 68)


def test_plain_npy(tmp_path):
    np.save(tmp_path / "d.npy", np.eye(3))
    assert np.array_equal(load_object_npy(tmp_path / "d.npy"), np.eye(3))

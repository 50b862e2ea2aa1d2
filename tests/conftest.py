"""Shared fixtures and markers.

Markers: `cuda` (skipped without a CUDA GPU), `ext` (skipped without a C++ compiler), `slow`, `network`
(never run by default). `DECAENV_TEST_ASSETS` may point at a folder holding DECA's public files under
`deca-data/` and photos under `images/` (read-only; never copied into the repo).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, Tuple

import pytest
from _support.assets import TEST_ASSETS_ENV, mini_flame_arrays, public_topology_dir, shared_synthetic_checkpoints
from _support.synthetic_cache import synthetic_data_dir as cached_data_dir

pytest_plugins = ["_support.io_budget"]


def _cuda_available() -> bool:
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means no CUDA tests
        return False
    return torch.cuda.is_available()


#: Fixtures that compile the rasterizer extension: tests using them are `ext` (left out of `make test-fast`).
COMPILING_FIXTURES = {"built_extension", "cpu_op", "cuda_op"}


def pytest_collection_modifyitems(config, items):
    no_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    no_cxx = pytest.mark.skip(reason="needs a C++ compiler (g++/c++)")
    no_net = pytest.mark.skip(reason="network tests never run by default")
    has_cuda = _cuda_available() if any("cuda" in i.keywords for i in items) else False
    has_cxx = bool(shutil.which("g++") or shutil.which("c++"))
    for item in items:
        if COMPILING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ext)  # builds the rasterizer extension: never in `make test-fast`
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(no_cuda)
        if "ext" in item.keywords and not has_cxx:
            item.add_marker(no_cxx)
        if "network" in item.keywords:
            item.add_marker(no_net)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own DECAENV_HOME and no DECAENV_DATA_DIR/DECAENV_DEBUG from the caller."""
    home = tmp_path_factory.mktemp("decaenv-home")
    monkeypatch.setenv("DECAENV_HOME", str(home))
    monkeypatch.delenv("DECAENV_DATA_DIR", raising=False)
    monkeypatch.delenv("DECAENV_DEBUG", raising=False)
    return home


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    """`$DECAENV_TEST_ASSETS` (DECA's public files + photos), or skip the test."""
    value = os.environ.get(TEST_ASSETS_ENV)
    if not value or not Path(value).is_dir():
        pytest.skip(f"{TEST_ASSETS_ENV} is not set to DECA's public test assets")
    return Path(value)


@pytest.fixture(scope="session")
def _checkpoint_cache() -> Dict[Tuple[int, bool], Path]:
    """The session data dirs' `deca_model.tar` files by (seed, with_optimizer): a data dir built after another
    links it instead of writing the same 214 MB again (see `shared_synthetic_checkpoints`)."""
    return {}


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory, _checkpoint_cache) -> Path:
    """A complete synthetic DECA data dir (seed 0, full-size networks without the trainer's optimizer state),
    built once and kept between runs (`_support.synthetic_cache`).

    Uses DECA's real public topology when `DECAENV_TEST_ASSETS` is set, a procedural head otherwise.
    Tests must not modify it: copy files out first.
    """
    pytest.importorskip("torch")
    fallback = tmp_path_factory.mktemp("synthetic-data")
    with shared_synthetic_checkpoints(_checkpoint_cache):
        folder = cached_data_dir(fallback, seed=0, public_dir=public_topology_dir(), with_optimizer=False)
    _checkpoint_cache[(0, False)] = folder / "deca_model.tar"
    return folder


@pytest.fixture(scope="session")
def procedural_data_dir(tmp_path_factory, request) -> Path:
    """A synthetic data dir on the procedural head (no optimizer state), built once and kept between runs (the same
    folder as `synthetic_data_dir` when no public topology is available: the two would be byte-identical).
    When both are built in one session, the second's `deca_model.tar` is a hard link to the first's (the
    checkpoint depends on the seed alone: `shared_synthetic_checkpoints`)."""
    pytest.importorskip("torch")
    if public_topology_dir() is None:
        return request.getfixturevalue("synthetic_data_dir")
    fallback = tmp_path_factory.mktemp("procedural-data")
    checkpoints = request.getfixturevalue("_checkpoint_cache")
    with shared_synthetic_checkpoints(checkpoints):
        folder = cached_data_dir(fallback, seed=0, public_dir=None, with_optimizer=False)
    checkpoints[(0, False)] = folder / "deca_model.tar"
    return folder


MTCNN_WHEEL_ENV = "DECAENV_TEST_MTCNN_WHEEL"
MTCNN_WHEEL_NAME = "facenet_pytorch-2.6.0-py3-none-any.whl"


def mtcnn_wheel():
    """facenet-pytorch's wheel, which holds the MTCNN weights: `$DECAENV_TEST_MTCNN_WHEEL`, else the one
    `make` downloads into `<venv>/wheelhouse-mtcnn/` (set-up may use PyPI; tests never do). None if absent."""
    import sys

    candidates = [os.environ.get(MTCNN_WHEEL_ENV, ""), str(Path(sys.prefix) / "wheelhouse-mtcnn" / MTCNN_WHEEL_NAME)]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="session")
def mtcnn_data_dir(tmp_path_factory) -> Path:
    """A data dir holding only `mtcnn/{pnet,rnet,onet}.pt`, imported by `decaenv fetch --from` (sha256-checked
    against the manifest) from facenet-pytorch's wheel, else from an installed facenet-pytorch's `data/`.
    `make setup` downloads the wheel, so its absence fails the test (a set-up error, never a silent skip)."""
    import importlib.util

    source = mtcnn_wheel()
    if source is None:
        spec = importlib.util.find_spec("facenet_pytorch")
        folder = Path(list(spec.submodule_search_locations)[0]) / "data" if spec else None
        source = folder if folder is not None and (folder / "onet.pt").is_file() else None
    if source is None:
        pytest.fail(f"no MTCNN weights: run `make setup` (it downloads {MTCNN_WHEEL_NAME}) or set {MTCNN_WHEEL_ENV}")
    from decaenv.cli import main

    out = tmp_path_factory.mktemp("mtcnn-data")
    home = tmp_path_factory.mktemp("mtcnn-home")
    old = os.environ.get("DECAENV_HOME")
    os.environ["DECAENV_HOME"] = str(home)
    try:
        code = main(["-q", "--data-dir", str(out), "fetch", "--from", str(source)])
    finally:
        if old is None:
            os.environ.pop("DECAENV_HOME", None)
        else:
            os.environ["DECAENV_HOME"] = old
    assert code == 0 and (out / "mtcnn" / "onet.pt").is_file(), f"importing the MTCNN weights from {source} failed"
    return out


@pytest.fixture(scope="session")
def reconstruct_data_dir(synthetic_data_dir, mtcnn_data_dir, tmp_path_factory):
    """The synthetic data dir plus the MTCNN weights in `mtcnn/` (what `decaenv fetch` + `fetch mtcnn-*` leave),
    made of symlinks: nothing is copied and the shared synthetic dir is not modified."""
    out = tmp_path_factory.mktemp("reconstruct-data")
    for item in list(synthetic_data_dir.iterdir()) + [mtcnn_data_dir / "mtcnn"]:
        (out / item.name).symlink_to(item, target_is_directory=item.is_dir())
    return out


@pytest.fixture(scope="session")
def mini_flame_pickle(tmp_path_factory):
    """(path, arrays): a FLAME pickle of the real chumpy-style layout with 20 components (7 MB; see
    `_support.assets.mini_flame_arrays`), written once per session. Read-only: copy it before changing it."""
    pytest.importorskip("scipy")
    from decaenv.synthetic import flame

    arrays = mini_flame_arrays(0)
    path = tmp_path_factory.mktemp("mini-flame") / "generic_model.pkl"
    path.write_bytes(flame.flame_pickle_bytes(arrays))
    return path, arrays

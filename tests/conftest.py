"""Shared fixtures and markers.

Markers: `cuda` (skipped without a CUDA GPU), `ext` (skipped without a C++ compiler), `slow`, `network`
(never run by default). `DECAENV_TEST_ASSETS` may point at a folder holding DECA's public files under
`deca-data/` and photos under `images/` (read-only; never copied into the repo).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _support.assets import TEST_ASSETS_ENV, mini_flame_arrays, public_topology_dir, shared_synthetic_checkpoints

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
def _checkpoint_cache(tmp_path_factory) -> Path:
    """Where the session data dirs' `deca_model.tar` is written once (see `shared_synthetic_checkpoints`)."""
    return tmp_path_factory.mktemp("synthetic-checkpoints")


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory, _checkpoint_cache) -> Path:
    """A complete synthetic DECA data dir (seed 0, full-size networks without the trainer's optimizer state),
    built once per session.

    Uses DECA's real public topology when `DECAENV_TEST_ASSETS` is set, a procedural head otherwise.
    Tests must not modify it: copy files out first.
    """
    pytest.importorskip("torch")
    from decaenv.synthetic import make_assets

    out = tmp_path_factory.mktemp("synthetic-data")
    with shared_synthetic_checkpoints(_checkpoint_cache):
        make_assets(out, seed=0, public_dir=public_topology_dir(), with_optimizer=False)
    return out


@pytest.fixture(scope="session")
def procedural_data_dir(tmp_path_factory, request) -> Path:
    """A synthetic data dir on the procedural head (no optimizer state), built once per session (the same
    folder as `synthetic_data_dir` when no public topology is available: the two would be byte-identical).
    Its `deca_model.tar` is the same file as `synthetic_data_dir`'s (a hard link: the checkpoint depends on
    the seed alone)."""
    pytest.importorskip("torch")
    from decaenv.synthetic import make_assets

    if public_topology_dir() is None:
        return request.getfixturevalue("synthetic_data_dir")
    out = tmp_path_factory.mktemp("procedural-data")
    with shared_synthetic_checkpoints(request.getfixturevalue("_checkpoint_cache")):
        make_assets(out, seed=0, public_dir=None, with_optimizer=False)
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

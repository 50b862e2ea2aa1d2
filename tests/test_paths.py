"""Data-dir resolution: flag, env var, DECA-style ./data, default."""

from pathlib import Path

import pytest

from decaenv.errors import UsageError
from decaenv.paths import cache_dir, home_dir, resolve_data_dir


def test_flag_wins_over_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DECAENV_DATA_DIR", str(tmp_path / "env"))
    got = resolve_data_dir(tmp_path / "flag", cwd=tmp_path)
    assert got.path == (tmp_path / "flag").resolve() and got.source == "flag"


def test_env_wins_over_cwd(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "generic_model.pkl").write_bytes(b"x")
    monkeypatch.setenv("DECAENV_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(cwd=tmp_path).source == "env"


def test_deca_style_cwd_data(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "head_template.obj").write_text("v 0 0 0\n")
    got = resolve_data_dir(cwd=tmp_path)
    assert got.source == "cwd" and got.path == (tmp_path / "data").resolve()


def test_plain_cwd_data_folder_is_not_taken(tmp_path, _isolated_home):
    (tmp_path / "data").mkdir()  # empty: not a DECA data folder
    got = resolve_data_dir(cwd=tmp_path)
    assert got.source == "default" and got.path == Path(_isolated_home).resolve() / "data"


def test_home_and_cache_follow_decaenv_home(_isolated_home):
    assert home_dir() == Path(_isolated_home).resolve()
    assert cache_dir() == Path(_isolated_home).resolve() / "cache"


def test_must_exist(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        resolve_data_dir(tmp_path / "nope", must_exist=True)


def test_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        resolve_data_dir(f)


def test_require_existing_and_the_cli_resolves_once(tmp_path, monkeypatch):
    from decaenv.cli._state import CliState
    from decaenv.paths import DataDir

    missing = DataDir(tmp_path / "nope", "flag")
    with pytest.raises(UsageError, match="does not exist"):
        missing.require_existing()
    assert DataDir(tmp_path, "env").require_existing() == DataDir(tmp_path, "env")
    monkeypatch.setenv("DECAENV_DATA_DIR", str(tmp_path / "first"))
    state = CliState()
    first = state.data_dir()
    monkeypatch.setenv("DECAENV_DATA_DIR", str(tmp_path / "second"))
    assert state.data_dir() is first and first.source == "env" and first.path == (tmp_path / "first").resolve()
    with pytest.raises(UsageError, match="does not exist"):
        state.data_dir(must_exist=True)


def test_the_runtime_config_takes_a_resolved_data_dir(tmp_path, monkeypatch):
    from decaenv.paths import DataDir
    from decaenv.runtime.config import get_cfg_defaults

    cfg = get_cfg_defaults()
    resolved = DataDir(tmp_path, "cwd")
    cfg.data_dir = resolved
    monkeypatch.setenv("DECAENV_DATA_DIR", str(tmp_path / "elsewhere"))
    assert cfg.resolve_data_dir() is resolved
    assert cfg.data_path("tex_path", resolved.path) == tmp_path / "FLAME_albedo_from_BFM.npz"
    cfg.model.tex_path = "~/albedo.npz"
    assert cfg.data_path("tex_path", resolved.path) == Path("~/albedo.npz").expanduser()
    cfg.data_dir = None
    assert cfg.resolve_data_dir() == DataDir((tmp_path / "elsewhere").resolve(), "env")

"""DECA's data-dir and checkpoint layout is declared once (`decaenv.deca_layout`) and everything agrees with
it: the fetch manifest, the runtime config, the data-dir markers, the synthetic generator, the data check."""

from __future__ import annotations

import subprocess
import sys

from decaenv import deca_layout as layout


def test_every_layout_file_is_in_the_fetch_manifest():
    from decaenv.fetch.manifest import load_manifest

    dests = {entry.dest for entry in load_manifest().entries}
    assert set(layout.DATA_FILES.values()) <= dests
    checkpoint = next(e for e in load_manifest().entries if e.dest == layout.CHECKPOINT_FILE)
    assert checkpoint.validator is not None and checkpoint.validator.kind == "deca-checkpoint"


def test_runtime_config_and_paths_read_the_layout(tmp_path):
    from decaenv.paths import is_deca_data_dir
    from decaenv.runtime.config import DecaConfig

    cfg = DecaConfig(data_dir=str(tmp_path))
    for attribute, name in layout.DATA_FILES.items():
        assert cfg.data_path(attribute, tmp_path) == tmp_path / name
    assert not is_deca_data_dir(tmp_path)
    (tmp_path / layout.FLAME_NPZ_FILE).write_bytes(b"")
    assert is_deca_data_dir(tmp_path)


def test_missing_user_files(tmp_path):
    assert layout.missing_user_files(tmp_path) == [layout.CHECKPOINT_FILE, layout.FLAME_FILE]
    (tmp_path / layout.FLAME_NPZ_FILE).write_bytes(b"")
    (tmp_path / layout.CHECKPOINT_FILE).write_bytes(b"")
    assert layout.missing_user_files(tmp_path) == []


def test_checkpoint_layout_counts():
    nets = layout.checkpoint_layout()
    assert list(nets) == list(layout.NETWORK_KEYS)
    assert nets["E_flame"]["layers.2.weight"] == (layout.N_FLAME_CODE, 1024)
    assert sum(size for _, size in layout.CODE_SPLIT) == layout.N_FLAME_CODE


def test_layout_imports_nothing_heavy():
    code = "import sys, decaenv.deca_layout; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

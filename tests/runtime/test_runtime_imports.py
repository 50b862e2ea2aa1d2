"""`import decaenv.runtime` and `decaenv reconstruct --help` stay light (no torch, numpy or rich)."""

import subprocess
import sys

HEAVY = ("torch", "numpy", "rich")


def _loaded_after(code: str) -> set:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {name.split(".")[0] for name in out.split()}


def test_import_runtime_is_light():
    assert not set(HEAVY) & _loaded_after("import decaenv.runtime, decaenv.runtime.config")


def test_reconstruct_help_is_light():
    code = "from decaenv.cli import main\ntry:\n    main(['reconstruct', '--help'])\nexcept SystemExit:\n    pass"
    assert not set(HEAVY) & _loaded_after(code)


def test_lazy_names_resolve():
    out = subprocess.run(
        [sys.executable, "-c", "import decaenv.runtime as r; print(r.DECA.__name__, r.cfg.model.n_shape)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["DECA", "100"]

"""Fixtures of the rasterizer tests: the compiled extension is built once per session (marker `ext`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def _build_once(tmp_path_factory, variant: str) -> Path:
    from decaenv.runtime.rasterizer import _env, build, extension

    root = tmp_path_factory.mktemp(f"ext-{variant}")
    # A lock torch's cpp_extension left behind in a killed build: torch itself would wait on it forever.
    stale = root / _env.env_key().name / f"work-{variant}" / "lock"
    stale.parent.mkdir(parents=True)
    stale.write_text("")
    result = build(cpu=variant == "cpu", cuda=variant == "cuda", root=root, timeout=600, lock_timeout=60)
    assert result.ok, result.to_dict()
    assert not stale.exists()
    assert extension.load(roots=[root]) in (variant, "cuda")
    return root


@pytest.fixture(scope="session")
def built_extension(tmp_path_factory) -> Path:
    """Build root of a freshly built, verified extension, loaded into this process.

    The CUDA variant on a machine with a GPU (it holds the CPU kernels too: one process can load only one
    library registering the `decaenv` ops), else the CPU variant.
    """
    if not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("needs a C++ compiler")
    return _build_once(tmp_path_factory, "cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="session")
def cpu_op(built_extension):
    """torch.ops.decaenv.rasterize with CPU kernels."""
    return torch.ops.decaenv.rasterize


@pytest.fixture(scope="session")
def cuda_op(built_extension):
    """torch.ops.decaenv.rasterize with CUDA kernels (skips without a GPU)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch.ops.decaenv.rasterize

"""Fixtures for doctor tests: fake torch installs (a version.py only). Fake tools: `_support.tools`."""

from pathlib import Path

import pytest


def write_torch(root: Path, version: str = "2.13.0+cpu", cuda=None) -> Path:
    """A folder that looks like an installed torch to checks that read files (version.py, include/)."""
    pkg = root / "site" / "torch"
    (pkg / "include").mkdir(parents=True, exist_ok=True)
    cuda_line = f"cuda: Optional[str] = {cuda!r}" if cuda else "cuda: Optional[str] = None"
    (pkg / "version.py").write_text(f"from typing import Optional\n__version__ = '{version}'\n{cuda_line}\n"
                                    "hip: Optional[str] = None\n")
    return pkg


@pytest.fixture()
def cpu_torch(tmp_path):
    """FakeProbe `files` for a CPU torch 2.13."""
    pkg = write_torch(tmp_path / "cpu")
    return {("torch", "version.py"): str(pkg / "version.py"), ("torch", "include"): str(pkg / "include")}


@pytest.fixture()
def cuda_torch(tmp_path):
    """FakeProbe `files` for a CUDA 12.1 torch 2.5."""
    pkg = write_torch(tmp_path / "cu121", "2.5.1+cu121", "12.1")
    return {("torch", "version.py"): str(pkg / "version.py"), ("torch", "include"): str(pkg / "include")}

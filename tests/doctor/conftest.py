"""Fixtures for doctor tests: fake torch installs (a version.py only), and a check that every `FakeProbe`
section answer written in these tests conforms to its contract (`decaenv.doctor.contracts`). Fake tools:
`_support.tools`."""

from pathlib import Path

import pytest
from _support.contracts import check_section

from decaenv.doctor.testing import FakeProbe


@pytest.fixture(autouse=True)
def fakes_follow_the_contracts(monkeypatch):
    """Every FakeProbe built by a doctor test has its dict answers checked against the section contracts."""
    original = FakeProbe.__init__

    def checked_init(self, sections=None, *args, **kwargs):
        for name, answer in (sections or {}).items():
            if isinstance(answer, dict):
                check_section(name, answer)
        original(self, sections, *args, **kwargs)

    monkeypatch.setattr(FakeProbe, "__init__", checked_init)


def write_torch(root: Path, version: str = "2.13.0+cpu", cuda=None) -> Path:
    """A folder that looks like an installed torch to checks that read files (version.py, include/)."""
    pkg = root / "site" / "torch"
    (pkg / "include").mkdir(parents=True, exist_ok=True)
    cuda_line = f"cuda: Optional[str] = {cuda!r}" if cuda else "cuda: Optional[str] = None"
    (pkg / "version.py").write_text(
        f"from typing import Optional\n__version__ = '{version}'\n{cuda_line}\nhip: Optional[str] = None\n"
    )
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

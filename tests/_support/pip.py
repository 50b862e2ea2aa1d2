"""Offline `pip install --target` for tests: a wheel or requirement installed into a plain folder, no deps, no
index, no build isolation (nothing reaches the network)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Union


def install_target(spec: Union[str, os.PathLike], target: Union[str, os.PathLike]) -> subprocess.CompletedProcess:
    """Run pip for `spec` into `target`; returns the finished process (stdout/stderr as text), never raises."""
    argv = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation"]
    return subprocess.run([*argv, "--target", str(target), str(spec)], capture_output=True, text=True, timeout=900)

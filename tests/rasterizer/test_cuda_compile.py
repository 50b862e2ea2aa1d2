"""Compile-only checks of the CUDA variant, on machines without a GPU (marker `ext`, needs nvcc).

A CPU build of torch reports no CUDA_HOME, so cpp_extension cannot build the `.cu` here: the kernel's
translation unit is compiled directly with nvcc and torch's include dirs, with the flags torch chose for
the session's CPU build (its C++ standard) plus decaenv's own nvcc flags. The PTX is then inspected: no
fused multiply-add may appear (bit-exact results) and the depth test must be a 64-bit atomic min.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from decaenv.runtime.rasterizer import _env
from decaenv.runtime.rasterizer._worker import nvcc_flags

NVCC = shutil.which("nvcc")
pytestmark = [pytest.mark.ext, pytest.mark.skipif(NVCC is None, reason="needs nvcc")]


def _torch_std_flag(build_root: Path) -> str:
    """The -std flag torch's cpp_extension wrote into the session build's ninja file."""
    ninja = next(build_root.glob("*/work-*/build.ninja"))
    match = re.search(r"-std=(c\+\+\d+)", ninja.read_text())
    assert match, "torch wrote no -std flag"
    return match.group(0)


def _include_flags():
    from torch.utils import cpp_extension

    flags = []
    for path in cpp_extension.include_paths():
        flags += ["-isystem", path]
    cmake_macros = Path(cpp_extension.include_paths()[0]) / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    if not cmake_macros.exists():  # CPU wheels lack this generated header; it only sets export macros
        flags.append("-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE")
    return flags


def test_cuda_kernel_compiles_with_nvcc_and_keeps_exact_arithmetic(built_extension, tmp_path):
    from torch.utils import cpp_extension

    source = _env.csrc_dir() / "cuda" / "rasterize_cuda.cu"
    argv = (
        [
            NVCC,
            "-c",
            str(source),
            "-o",
            str(tmp_path / "rasterize_cuda.o"),
            "--keep",
            "--keep-dir",
            str(tmp_path),
            _torch_std_flag(built_extension),
            "--compiler-options",
            "-fPIC",
            "-gencode",
            "arch=compute_75,code=[sm_75,compute_75]",
        ]
        + cpp_extension.COMMON_NVCC_FLAGS
        + nvcc_flags("0123456789abcdef")
        + _include_flags()
    )
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "rasterize_cuda.o").stat().st_size > 0
    ptx = "\n".join(p.read_text() for p in tmp_path.glob("*.ptx"))
    assert ".entry" in ptx and "face_pass_kernel" in ptx and "pixel_pass_kernel" in ptx
    assert "atom.global.min.u64" in ptx
    assert not re.search(r"\bfma\.rn\.f32\b", ptx), "--fmad=false must keep multiplies and adds separate"


def test_registration_compiles_with_the_cuda_kernels_declared(tmp_path):
    from torch.utils import cpp_extension

    argv = ["g++", "-std=c++20", "-fsyntax-only", "-DWITH_CUDA", str(_env.csrc_dir() / "ext.cpp")] + [
        flag for path in cpp_extension.include_paths() for flag in ("-isystem", path)
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr

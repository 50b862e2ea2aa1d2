"""Compiler error -> cause mapping, on real outputs provoked with tiny sources (marker `ext`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from decaenv.runtime.rasterizer.diagnose import diagnose, diagnose_build_output, first_error_line

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="needs nvcc")


def _torch_include() -> str:
    torch = pytest.importorskip("torch")
    return str(Path(torch.__file__).parent / "include")


def _compile(tmp_path: Path, source: str, argv) -> str:
    path = tmp_path / ("k.cu" if argv[0].endswith("nvcc") else "k.cpp")
    path.write_text(source)
    out = subprocess.run(list(argv) + [str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode != 0, "the provoked build unexpectedly succeeded"
    return out.stdout + out.stderr


def test_diagnosis_does_not_need_torch():
    code = ("import sys\nfrom decaenv.runtime.rasterizer.diagnose import diagnose_build_output\n"
            "diagnose_build_output('x')\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.ext
def test_cxx_standard_too_old(tmp_path):
    log = _compile(tmp_path, "#include <ATen/ATen.h>\n", ["g++", "-std=c++14", "-fsyntax-only", "-Wfatal-errors", "-isystem",
                                                           _torch_include()])
    diag = diagnose_build_output(log)
    assert diag.cause_id == "cxx-standard" and diag.failure_mode == "FM04"
    assert "C++17 or later" in diag.first_error and "no -std flag" in diag.fix


@pytest.mark.ext
def test_missing_python_headers(tmp_path):
    log = _compile(tmp_path, "#include <Python.h>\n", ["g++", "-fsyntax-only"])
    diag = diagnose_build_output(log)
    assert diag.cause_id == "python-headers" and "Python.h" in diag.first_error and "-dev" in diag.fix


@pytest.mark.ext
def test_deprecated_aten_dispatch_on_type(tmp_path):
    source = ("#include <ATen/core/Tensor.h>\n#include <ATen/Dispatch.h>\n"
              "void f(const at::Tensor& t) {\n"
              "  AT_DISPATCH_FLOATING_TYPES(t.type(), \"f\", [&] { (void)t.data_ptr<scalar_t>(); });\n}\n")
    log = _compile(tmp_path, source, ["g++", "-std=c++20", "-fsyntax-only", "-isystem", _torch_include()])
    diag = diagnose_build_output(log)
    assert diag.cause_id == "aten-api" and diag.failure_mode == "FM05" and ".scalar_type()" in diag.fix


@pytest.mark.ext
@needs_nvcc
def test_gcc_newer_than_nvcc_supports(tmp_path):
    fake = tmp_path / "g++"
    fake.write_text(f"#!/bin/sh\nexec {shutil.which('g++')} -U__GNUC__ -D__GNUC__=99 \"$@\"\n")
    fake.chmod(0o755)
    log = _compile(tmp_path, "__global__ void k() {}\n", [NVCC, "-ccbin", str(fake), "-c", "-o", "k.o"])
    diag = diagnose_build_output(log)
    assert diag.cause_id == "gcc-too-new" and "unsupported GNU version" in diag.first_error


@pytest.mark.ext
@needs_nvcc
def test_empty_ccbin_from_missing_gcc7(tmp_path):
    log = _compile(tmp_path, "__global__ void k() {}\n", [NVCC, "-ccbin=", "-c", "-o", "k.o"])
    diag = diagnose_build_output(log)
    assert diag.cause_id == "ccbin" and diag.failure_mode == "FM02" and "nvcc fatal" in diag.first_error


@pytest.mark.ext
@needs_nvcc
def test_gpu_architecture_unknown_to_nvcc(tmp_path):
    log = _compile(tmp_path, "__global__ void k() {}\n", [NVCC, "-arch=sm_30", "-c", "-o", "k.o"])
    assert diagnose_build_output(log).cause_id == "gpu-arch"


def test_cuda_source_with_a_cpu_torch(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.version.cuda:
        pytest.skip("this torch has CUDA")
    from torch.utils import cpp_extension

    (tmp_path / "k.cu").write_text("__global__ void k() {}\n")
    with pytest.raises(OSError) as info:
        cpp_extension.load(name="decaenv_test_cu", sources=[str(tmp_path / "k.cu")],
                           build_directory=str(tmp_path), is_python_module=False)
    text = f"{type(info.value).__name__}: {info.value}"
    assert diagnose_build_output(text).cause_id == "cuda-home-unset"
    diag = diagnose_build_output(text, torch_has_cuda=False)
    assert diag.cause_id == "cpu-torch" and "--cpu" in diag.fix


def test_no_ninja_message_from_torch(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")  # noqa: F841
    from torch.utils import cpp_extension

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError) as info:
        cpp_extension.verify_ninja_availability()
    assert diagnose_build_output(f"RuntimeError: {info.value}").cause_id == "no-ninja"


@pytest.mark.ext
def test_missing_compiler_through_ninja(tmp_path):
    torch = pytest.importorskip("torch")  # noqa: F841
    if not shutil.which("ninja"):
        pytest.skip("needs ninja")
    code = ("from torch.utils.cpp_extension import load\n"
            f"load(name='decaenv_test_cc', sources=[{str(tmp_path / 'a.cpp')!r}], "
            f"build_directory={str(tmp_path)!r}, is_python_module=False)\n")
    (tmp_path / "a.cpp").write_text("int f() { return 1; }\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, CXX=str(tmp_path / "no-such-g++")))
    assert out.returncode != 0
    diag = diagnose_build_output(out.stdout + out.stderr)
    assert diag.cause_id == "no-compiler" and "no-such-g++" in diag.first_error


def test_first_error_prefers_compiler_lines_over_echoes():
    log = ("[1/2] c++ -Werror=x -c a.cpp\nFAILED: a.o\nIn file included from a.cpp:1:\n"
           "/x/y.h:5:2: error: #error You need C++17 to compile PyTorch\n"
           "RuntimeError: Error building extension 'a'\n")
    assert first_error_line(log) == "/x/y.h:5:2: error: #error You need C++17 to compile PyTorch"
    assert first_error_line("warning: unused\nall good\n") == ""


@pytest.mark.parametrize("line, cause", [
    ("/usr/bin/ld: cannot find -lc10_cuda: No such file or directory", "link-library"),
    ("collect2: error: something unheard of", "unknown"),
    ("ImportError: x.so: undefined symbol: _ZN3c10", "abi-mismatch"),
    ("c++: fatal error: Killed signal terminated program cc1plus", "out-of-memory"),
    ("OSError: [Errno 28] No space left on device", "disk-full"),
    ("RuntimeError: The detected CUDA version (12.1) mismatches the version that was used to compile "
     "PyTorch (11.8). Please make sure to use the same CUDA versions.", "cuda-mismatch"),
    ("subprocess.CalledProcessError: Command '['where', 'cl']' returned non-zero exit status 1.", "no-compiler"),
    ("fatal error: cuda_runtime.h: No such file or directory", "cuda-headers"),
])
def test_known_messages(line, cause):
    diag = diagnose_build_output("noise\n" + line + "\n")
    assert diag.cause_id == cause and diag.first_error == line.strip()
    assert diag.one_line().count("\n") == 0


def test_known_causes_are_addressable():
    assert diagnose("no-ninja").fix.startswith("pip install ninja")
    with pytest.raises(KeyError):
        diagnose("nope")

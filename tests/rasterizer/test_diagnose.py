"""decaenv's one build-failure classifier: the corpus of real build logs in `build_logs/`, real outputs
provoked with tiny sources (marker `ext`), and the exact messages of tools this machine lacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from decaenv.runtime.rasterizer.diagnose import CAUSES, causes_table, diagnose, diagnose_build_output, first_error_line

CORPUS = sorted((Path(__file__).parent / "build_logs").glob("*.log"))

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
    code = (
        "import sys\nfrom decaenv.runtime.rasterizer.diagnose import diagnose_build_output\n"
        "diagnose_build_output('x')\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.ext
def test_cxx_standard_too_old(tmp_path):
    log = _compile(
        tmp_path,
        "#include <ATen/ATen.h>\n",
        ["g++", "-std=c++14", "-fsyntax-only", "-Wfatal-errors", "-isystem", _torch_include()],
    )
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
    source = (
        "#include <ATen/core/Tensor.h>\n#include <ATen/Dispatch.h>\n"
        "void f(const at::Tensor& t) {\n"
        '  AT_DISPATCH_FLOATING_TYPES(t.type(), "f", [&] { (void)t.data_ptr<scalar_t>(); });\n}\n'
    )
    log = _compile(tmp_path, source, ["g++", "-std=c++20", "-fsyntax-only", "-isystem", _torch_include()])
    diag = diagnose_build_output(log)
    assert diag.cause_id == "aten-api" and diag.failure_mode == "FM05" and ".scalar_type()" in diag.fix


@pytest.mark.ext
@needs_nvcc
def test_gcc_newer_than_nvcc_supports(tmp_path):
    fake = tmp_path / "g++"
    fake.write_text(f'#!/bin/sh\nexec {shutil.which("g++")} -U__GNUC__ -D__GNUC__=99 "$@"\n')
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
        cpp_extension.load(
            name="decaenv_test_cu",
            sources=[str(tmp_path / "k.cu")],
            build_directory=str(tmp_path),
            is_python_module=False,
        )
    text = f"{type(info.value).__name__}: {info.value}"
    assert diagnose_build_output(text).cause_id == "cuda-home-unset"
    diag = diagnose_build_output(text, torch_has_cuda=False)
    assert diag.cause_id == "cpu-torch" and "--cpu" in diag.fix


def test_no_ninja_message_from_torch(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    from torch.utils import cpp_extension

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError) as info:
        cpp_extension.verify_ninja_availability()
    assert diagnose_build_output(f"RuntimeError: {info.value}").cause_id == "no-ninja"


@pytest.mark.ext
def test_missing_compiler_through_ninja(tmp_path):
    pytest.importorskip("torch")
    if not shutil.which("ninja"):
        pytest.skip("needs ninja")
    code = (
        "from torch.utils.cpp_extension import load\n"
        f"load(name='decaenv_test_cc', sources=[{str(tmp_path / 'a.cpp')!r}], "
        f"build_directory={str(tmp_path)!r}, is_python_module=False)\n"
    )
    (tmp_path / "a.cpp").write_text("int f() { return 1; }\n")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, CXX=str(tmp_path / "no-such-g++")),
    )
    assert out.returncode != 0
    diag = diagnose_build_output(out.stdout + out.stderr)
    assert diag.cause_id == "no-compiler" and "no-such-g++" in diag.first_error


def test_first_error_prefers_compiler_lines_over_echoes():
    log = (
        "[1/2] c++ -Werror=x -c a.cpp\nFAILED: a.o\nIn file included from a.cpp:1:\n"
        "/x/y.h:5:2: error: #error You need C++17 to compile PyTorch\n"
        "RuntimeError: Error building extension 'a'\n"
    )
    assert first_error_line(log) == "/x/y.h:5:2: error: #error You need C++17 to compile PyTorch"
    assert first_error_line("warning: unused\nall good\n") == ""


KNOWN_MESSAGES = [
    ("/usr/bin/ld: cannot find -lc10_cuda: No such file or directory", "link-library"),
    ("collect2: error: something unheard of", "unknown"),
    ("ImportError: x.so: undefined symbol: _ZN3c10", "abi-mismatch"),
    ("c++: fatal error: Killed signal terminated program cc1plus", "out-of-memory"),
    ("OSError: [Errno 28] No space left on device", "disk-full"),
    (
        "RuntimeError: The detected CUDA version (12.1) mismatches the version that was used to compile "
        "PyTorch (11.8). Please make sure to use the same CUDA versions.",
        "cuda-mismatch",
    ),
    ("subprocess.CalledProcessError: Command '['where', 'cl']' returned non-zero exit status 1.", "msvc-missing"),
    ("fatal error: cuda_runtime.h: No such file or directory", "cuda-headers"),
    (
        "/usr/local/cuda/include/crt/host_config.h:138:2: error: #error -- unsupported GNU version! gcc versions later "
        "than 8 are not supported!",
        "gcc-too-new",
    ),
    ("nvcc fatal   : Failed to preprocess host compiler properties.", "ccbin"),
    (
        "standard_rasterize_cuda_kernel.cu(244): error: no suitable conversion function from "
        '"const at::DeprecatedTypeProperties" to "c10::ScalarType" exists',
        "aten-api",
    ),
    ('rasterize_cuda_kernel.cu(30): error: namespace "std" has no member "is_enum_v"', "cxx-standard"),
    ("OSError: CUDA_HOME environment variable is not set. Please set it to your CUDA install root.", "cuda-home-unset"),
    ("nvcc fatal   : Unsupported gpu architecture 'compute_86'", "gpu-arch"),
    ("RuntimeError: Ninja is required to load C++ extensions", "no-ninja"),
    ("x.cpp:1:10: fatal error: Python.h: No such file or directory", "python-headers"),
    ("/bin/sh: 1: c++: not found", "no-compiler"),
    ("ninja: error: loading 'build.ninja': No such file or directory", "path-spaces"),
    ("OSError: [Errno 13] Permission denied: '/root/.cache/torch_extensions/py311_cpu'", "permission"),
    ("x.cpp:2:10: fatal error: png.h: No such file or directory", "missing-header"),
    ("ImportError: /x/_C.so: undefined symbol: _ZNK2at6Tensor7is_cudaEv", "abi-mismatch"),
]


@pytest.mark.parametrize("line, cause", KNOWN_MESSAGES)
def test_known_messages(line, cause):
    diag = diagnose_build_output("noise\n" + line + "\n")
    assert diag.cause_id == cause and diag.first_error == line.strip()
    assert diag.one_line().count("\n") == 0


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_log_maps_to_its_cause(path):
    diag = diagnose_build_output(path.read_text(encoding="utf-8"))
    assert diag.cause_id == path.name.split(".")[0]
    assert diag.first_error and diag.first_error in path.read_text(encoding="utf-8")


def test_cxx14_wrapper_is_a_standard_problem_not_an_aten_api_one():
    """issue 11 §5: the first error is "'is_enum_v' is not a member of 'std'"; later a header path names
    DeprecatedTypeProperties.h, which is not the ATen-API failure."""
    log = (Path(__file__).parent / "build_logs" / "cxx-standard.decaenv-build-cxx14-wrapper.log").read_text()
    diag = diagnose_build_output(log)
    assert "is_enum_v" in diag.first_error and diag.cause_id == "cxx-standard" and diag.failure_mode == "FM04"
    assert "DeprecatedTypeProperties" in log


def test_every_cause_has_an_example():
    examples = {p.name.split(".")[0] for p in CORPUS}
    examples |= {cause for _, cause in KNOWN_MESSAGES}
    examples.add("cpu-torch")  # chosen from torch_has_cuda, tested above
    assert {c.id for c in CAUSES} <= examples
    assert [row["id"] for row in causes_table()] == [c.id for c in CAUSES]
    assert len({c.id for c in CAUSES}) == len(CAUSES)


def test_earliest_cause_wins_and_the_last_line_is_not_the_answer():
    log = (
        "x.cpp:1:10: fatal error: Python.h: No such file or directory\nerror: command 'c++' failed\n"
        "ImportError: /x/_C.so: undefined symbol: _ZN3c10\nninja: build stopped: subcommand failed."
    )
    diag = diagnose_build_output(log)
    assert diag.cause_id == "python-headers"
    assert diag.first_error == "x.cpp:1:10: fatal error: Python.h: No such file or directory"


def test_unknown_log_has_no_cause_but_a_first_error():
    diag = diagnose_build_output("warning: deprecated\nfoo.cpp:3: error: expected ';' before '}'\n")
    assert diag.cause_id == "unknown" and diag.first_error == "foo.cpp:3: error: expected ';' before '}'"
    assert first_error_line("x.cu: warning: Tensor.data<T>() is deprecated [-Werror]\n") == ""


def test_known_causes_are_addressable():
    assert diagnose("no-ninja").fix.startswith("pip install ninja")
    with pytest.raises(KeyError):
        diagnose("nope")

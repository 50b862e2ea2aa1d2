"""Checks of the `torch` and `toolchain` categories, every outcome, on fake machines."""

import pytest
from _support.tools import make_tool

from decaenv.doctor.checks import toolchain, torch_checks
from decaenv.doctor.model import Status
from decaenv.doctor.probe import PlatformInfo
from decaenv.doctor.testing import FakeProbe, Lost, Timeout, make_context



def _run(func, **probe):
    return func(make_context(FakeProbe(**probe)))


TORCH_OK = {"installed": True, "importable": True, "version": "2.13.0+cpu", "cuda": None, "file": "/t/__init__.py",
            "seconds": 2.0, "numpy_interop": True, "cpu_ok": True}


@pytest.mark.parametrize("answer, status, text", [
    ({"installed": False}, Status.FAIL, "not installed"),
    ({"installed": True, "importable": False, "error": "OSError: libcudart.so.12: cannot open"}, Status.FAIL,
     "import torch` fails"),
    (dict(TORCH_OK, version="1.12.1"), Status.FAIL, "older than decaenv supports"),
    (dict(TORCH_OK, cpu_ok=False, cpu_error="RuntimeError: x"), Status.FAIL, "CPU tensor op fails"),
    (dict(TORCH_OK, numpy_interop=False, numpy_error="RuntimeError: Numpy is not available"), Status.WARN,
     "cannot exchange arrays"),
    (TORCH_OK, Status.OK, "torch 2.13.0+cpu (CPU build)"),
    (dict(TORCH_OK, version="2.5.1+cu121", cuda="12.1"), Status.OK, "CUDA 12.1 build"),
])
def test_torch(answer, status, text):
    result = _run(torch_checks.check_torch, sections={"torch": answer})
    assert result.status is status and text in result.summary


def test_torch_install_hint_matches_the_machine():
    missing = _run(torch_checks.check_torch, sections={"torch": {"installed": False}}, python="/e/bin/python")
    command = missing.remediation.commands[0]
    assert "/e/bin/python -m pip install torch --index-url https://download.pytorch.org/whl/cpu" in command
    assert missing.fixes[0].needs_yes and missing.fixes[0].args["args"][0] == "torch"
    gpu = _run(torch_checks.check_torch, sections={"torch": {"installed": False}}, driver="550.54")
    assert "--index-url" not in gpu.remediation.commands[0]
    cuda_libs = _run(torch_checks.check_torch, sections={"torch": {"installed": True, "importable": False,
                                                                  "error": "OSError: libcudnn.so.9: cannot open"}})
    assert "CUDA libraries" in cuda_libs.remediation.text


def test_torch_import_that_kills_the_process():
    result = _run(torch_checks.check_torch, sections={"torch": Lost(-11, "Fatal Python error: Segmentation fault")})
    assert result.status is Status.FAIL and "kills the process" in result.summary


@pytest.mark.parametrize("answer, driver, status, text", [
    ({"compiled": False}, None, Status.OK, "CPU-only build"),
    ({"compiled": False}, "550.54", Status.WARN, "GPU is unused"),
    ({"compiled": True, "cuda": "12.1", "available": False}, None, Status.OK, "no NVIDIA driver"),
    ({"compiled": True, "cuda": "12.1", "available": False,
      "warnings": ["The NVIDIA driver on your system is too old (found version 11040)"]},
     "470.1", Status.WARN, "too old"),
    ({"compiled": True, "cuda": "12.1", "available": True,
      "devices": [{"index": 0, "name": "NVIDIA RTX 4090", "capability": [8, 9]}]}, "550.54", Status.OK, "sm_89"),
])
def test_torch_cuda(answer, driver, status, text):
    result = _run(torch_checks.check_torch_cuda, sections={"cuda": answer}, driver=driver)
    assert result.status is status and text in result.summary


def _gpu(cap, smoke="ok", arch=("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"), env=None):
    return {"cuda": {"available": True, "arch_list": list(arch), "arch_env": env,
                     "devices": [{"index": 0, "name": "GPU", "capability": list(cap), "smoke": smoke}]}}


def test_gpu_arch():
    assert _run(torch_checks.check_gpu_arch, sections={"cuda": {"available": False}}).status is Status.SKIP
    assert _run(torch_checks.check_gpu_arch, sections=_gpu((8, 6))).status is Status.OK
    same_major = _run(torch_checks.check_gpu_arch, sections=_gpu((8, 9)))
    assert same_major.status is Status.OK and "binary compatible" in same_major.details[0]
    ptx = _run(torch_checks.check_gpu_arch, sections=_gpu((12, 0), arch=("sm_80", "compute_90")))
    assert ptx.status is Status.OK and "PTX" in ptx.details[0]
    blackwell = _run(torch_checks.check_gpu_arch, sections=_gpu((12, 0)))
    assert blackwell.status is Status.FAIL and "sm_120" in blackwell.summary
    smoke = _run(torch_checks.check_gpu_arch, sections=_gpu(
        (8, 6), smoke="RuntimeError: CUDA error: no kernel image is available for execution on the device"))
    assert smoke.status is Status.FAIL
    env = _run(torch_checks.check_gpu_arch, sections=_gpu((8, 6), env="sm_86;8.9+PTX"))
    assert env.status is Status.WARN and "sm_86" in env.summary


@pytest.mark.parametrize("answer, status, text", [
    ({"safe_load_ok": False, "safe_load_error": "x"}, Status.FAIL, "fails on a plain state dict"),
    ({"safe_load_ok": True, "has_weights_only": False}, Status.WARN, "no weights_only"),
    ({"safe_load_ok": True, "has_weights_only": True, "env_force_no": "1"}, Status.WARN, "TORCH_FORCE_NO"),
    ({"safe_load_ok": True, "has_weights_only": True, "default_weights_only": True}, Status.OK, "weights_only=True by"),
    ({"safe_load_ok": True, "has_weights_only": True, "default_weights_only": False}, Status.OK,
     "weights_only=False by"),
])
def test_torch_load(answer, status, text):
    result = _run(torch_checks.check_torch_load, sections={"torch-load": answer})
    assert result.status is status and text in result.summary


# -- toolchain -----------------------------------------------------------------------------------------------
NVCC_118 = "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 11.8, V11.8.89\n"
NVCC_121 = "Cuda compilation tools, release 12.1, V12.1.105\n"


def _cuda_root(tmp_path, name="cuda-11.8"):
    root = tmp_path / name
    nvcc = make_tool(root / "bin", "nvcc")
    (root / "include").mkdir(exist_ok=True)
    (root / "include" / "cuda_runtime.h").write_text("")
    return root, nvcc


def test_cuda_toolkit_malformed_cuda_home(tmp_path, cuda_torch):
    root, nvcc = _cuda_root(tmp_path)
    result = _run(toolchain.check_cuda_toolkit, environ={"CUDA_HOME": f":{root}"}, files=cuda_torch,
                  commands={(nvcc, "--version"): (0, NVCC_118)})
    assert result.status is Status.FAIL and "path separator" in result.summary
    cpu = _run(toolchain.check_cuda_toolkit, environ={"CUDA_HOME": f"{root}:/usr/local/cuda"})
    assert cpu.status is Status.WARN and "several paths" in cpu.summary


def test_cuda_toolkit_bin_folder_and_missing_nvcc(tmp_path, cuda_torch):
    root, _ = _cuda_root(tmp_path)
    result = _run(toolchain.check_cuda_toolkit, environ={"CUDA_HOME": str(root / "bin")}, files=cuda_torch)
    assert result.status is Status.FAIL and "bin folder" in result.summary


def test_cuda_toolkit_absent(cuda_torch, cpu_torch):
    with_cuda = _run(toolchain.check_cuda_toolkit, files=cuda_torch)
    assert with_cuda.status is Status.WARN and "cannot be built" in with_cuda.summary
    assert _run(toolchain.check_cuda_toolkit, files=cpu_torch).status is Status.OK


def test_cuda_toolkit_found_on_path(tmp_path, cpu_torch):
    root, nvcc = _cuda_root(tmp_path)
    result = _run(toolchain.check_cuda_toolkit, tools={"nvcc": nvcc}, files=cpu_torch,
                  commands={(nvcc, "--version"): (0, NVCC_118)})
    assert result.status is Status.OK and "CUDA 11.8" in result.summary and "via PATH" in result.summary
    assert "unused" in result.summary
    garbled = _run(toolchain.check_cuda_toolkit, tools={"nvcc": nvcc}, commands={(nvcc, "--version"): (0, "hello")})
    assert garbled.status is Status.WARN


def test_cuda_toolkit_hanging_nvcc_raises_timeout(tmp_path):
    from decaenv.doctor.probe import ProbeTimeout

    root, nvcc = _cuda_root(tmp_path)
    with pytest.raises(ProbeTimeout):
        _run(toolchain.check_cuda_toolkit, tools={"nvcc": nvcc}, commands={(nvcc, "--version"): Timeout()})


def test_cuda_home_and_path_disagree(tmp_path, cuda_torch):
    root, nvcc = _cuda_root(tmp_path)
    _other, other_nvcc = _cuda_root(tmp_path, "cuda-12.1")
    result = _run(toolchain.check_cuda_toolkit, environ={"CUDA_HOME": str(root)}, tools={"nvcc": other_nvcc},
                  files=cuda_torch, commands={(nvcc, "--version"): (0, NVCC_118)})
    assert result.status is Status.OK and any("is not the one in CUDA_HOME" in d for d in result.details)


def test_nvcc_torch_match(tmp_path, cuda_torch, cpu_torch):
    root, nvcc = _cuda_root(tmp_path)
    probe = dict(tools={"nvcc": nvcc}, commands={(nvcc, "--version"): (0, NVCC_118)})
    assert _run(toolchain.check_nvcc_torch, files=cpu_torch, **probe).status is Status.SKIP
    major = _run(toolchain.check_nvcc_torch, files=cuda_torch, **probe)
    assert major.status is Status.FAIL and "refuses" in major.summary
    minor = _run(toolchain.check_nvcc_torch, files=cuda_torch, tools={"nvcc": nvcc},
                 commands={(nvcc, "--version"): (0, "release 12.4, V12.4.1")})
    assert minor.status is Status.WARN
    same = _run(toolchain.check_nvcc_torch, files=cuda_torch, tools={"nvcc": nvcc},
                commands={(nvcc, "--version"): (0, NVCC_121)})
    assert same.status is Status.OK
    assert _run(toolchain.check_nvcc_torch, files=cuda_torch).status is Status.SKIP


def _host(tmp_path, files, gcc_out, nvcc_out=NVCC_118, environ=None):
    root, nvcc = _cuda_root(tmp_path)
    gcc = make_tool(tmp_path / "gccbin", "gcc")
    return _run(toolchain.check_host_compiler, tools={"nvcc": nvcc, "gcc": gcc}, files=files, environ=environ or {},
                commands={(nvcc, "--version"): (0, nvcc_out), (gcc, "--version"): (0, gcc_out)})


def test_host_compiler_cuda_118_gcc_12(tmp_path, cuda_torch, cpu_torch):
    gcc12 = "gcc (Ubuntu 12.3.0-1ubuntu1~22.04) 12.3.0\nCopyright (C) 2022"
    failing = _host(tmp_path, cuda_torch, gcc12)
    assert failing.status is Status.FAIL and "unsupported by CUDA 11.8" in failing.summary
    assert "gcc 11" in failing.summary and "export CC=gcc-11 CXX=g++-11" in failing.remediation.commands
    assert _host(tmp_path, cpu_torch, gcc12).status is Status.WARN


def test_host_compiler_ok_clang_unknown_and_missing(tmp_path, cuda_torch):
    assert _host(tmp_path, cuda_torch, "gcc (GCC) 11.4.1 20230605").status is Status.OK
    assert _host(tmp_path, cuda_torch, "clang version 14.0.0").status is Status.OK
    unknown = _host(tmp_path, cuda_torch, "gcc (GCC) 13.1.0", nvcc_out="release 14.2, V14.2.1")
    assert unknown.status is Status.WARN and "does not know" in unknown.summary
    root, nvcc = _cuda_root(tmp_path / "x")
    missing = _run(toolchain.check_host_compiler, tools={"nvcc": nvcc}, files=cuda_torch,
                   commands={(nvcc, "--version"): (0, NVCC_118)})
    assert missing.status is Status.FAIL and "Failed to preprocess host compiler" in missing.summary
    assert _run(toolchain.check_host_compiler).status is Status.SKIP


def test_host_compiler_honours_cc(tmp_path, cuda_torch):
    gcc11 = make_tool(tmp_path / "g11", "gcc-11")
    root, nvcc = _cuda_root(tmp_path)
    result = _run(toolchain.check_host_compiler, tools={"nvcc": nvcc}, files=cuda_torch, environ={"CC": gcc11},
                  commands={(nvcc, "--version"): (0, NVCC_118), (gcc11, "--version"): (0, "gcc-11 (Debian) 11.3.0")})
    assert result.status is Status.OK and result.data["compiler"] == gcc11


def test_host_config_header_beats_the_table(tmp_path, cuda_torch):
    root, nvcc = _cuda_root(tmp_path)
    (root / "include" / "crt").mkdir()
    (root / "include" / "crt" / "host_config.h").write_text(
        "#if __GNUC__ > 12\n#error -- unsupported GNU version! gcc versions later than 12 are not supported!\n#endif\n")
    (root / "include" / "cuda.h").write_text("#define CUDA_VERSION 11080\n")
    gcc = make_tool(tmp_path / "gccbin", "gcc")
    result = _run(toolchain.check_host_compiler, tools={"nvcc": nvcc, "gcc": gcc}, files=cuda_torch,
                  commands={(nvcc, "--version"): (0, NVCC_118), (gcc, "--version"): (0, "gcc (X) 12.2.0")})
    assert result.status is Status.OK and result.data["limit_from"].endswith("host_config.h")


def test_cxx_compiler(tmp_path, cpu_torch):
    gxx = make_tool(tmp_path, "c++")
    assert _run(toolchain.check_cxx, files=cpu_torch).status is Status.WARN
    ok = _run(toolchain.check_cxx, tools={"c++": gxx}, files=cpu_torch,
              commands={(gxx, "--version"): (0, "c++ (Debian 12.2.0-14) 12.2.0")})
    assert ok.status is Status.OK and "gcc 12.2.0" in ok.summary
    old = _run(toolchain.check_cxx, tools={"c++": gxx}, files=cpu_torch,
               commands={(gxx, "--version"): (0, "c++ (GCC) 8.5.0")})
    assert old.status is Status.WARN and "too old" in old.summary
    win = PlatformInfo("Windows", "11", "AMD64", (3, 11, 7), "CPython", "C:/py/python.exe")
    assert _run(toolchain.check_cxx, platform=win).status is Status.WARN
    assert _run(toolchain.check_cxx, platform=win, tools={"cl": "C:/VS/cl.exe"}).status is Status.OK


def test_ninja(tmp_path):
    ninja = make_tool(tmp_path, "ninja")
    def with_output(code, text):
        return _run(toolchain.check_ninja, tools={"ninja": ninja}, commands={(ninja, "--version"): (code, text)})

    assert with_output(0, "1.11.1").status is Status.OK
    assert with_output(1, "boom").status is Status.WARN
    missing = _run(toolchain.check_ninja)
    assert missing.status is Status.WARN and missing.fixes[0].args["specs"] == ["ninja"]
    venv_bin = tmp_path / "venv" / "bin"
    make_tool(venv_bin, "ninja")
    beside = _run(toolchain.check_ninja, python=str(venv_bin / "python"))
    assert beside.status is Status.WARN and "not on PATH" in beside.summary


def test_python_headers(tmp_path):
    (tmp_path / "Python.h").write_text("")
    assert _run(toolchain.check_python_headers, include=str(tmp_path)).status is Status.OK
    missing = _run(toolchain.check_python_headers, include=str(tmp_path / "none"))
    assert missing.status is Status.WARN and "python3.11-dev" in missing.remediation.commands[0]

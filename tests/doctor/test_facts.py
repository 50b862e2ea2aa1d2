"""Pure facts: version parsing, nvcc's gcc limits, CUDA resolution, env-value syntax."""

import os

import pytest

from decaenv.doctor.toolchain_facts import (
    env_value_problems,
    host_config_max_gcc,
    max_gcc_for_cuda,
    parse_compiler_version,
    parse_nvcc_version,
    resolve_cuda,
    torch_build_from_file,
)

@pytest.mark.parametrize("text, expected", [
    ("nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 11.8, V11.8.89", (11, 8)),
    ("Cuda compilation tools, release 13.0, V13.0.88\nBuild cuda_13.0.r13.0", (13, 0)),
    ("V12.4.131", (12, 4)),
    ("garbage", None),
])
def test_parse_nvcc(text, expected):
    assert parse_nvcc_version(text) == expected


@pytest.mark.parametrize("text, family, version", [
    ("gcc (Debian 12.2.0-14+deb12u1) 12.2.0\nCopyright", "gcc", (12, 2, 0)),
    ("gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2)", "gcc", (11, 4, 1)),
    ("g++ (Ubuntu 9.4.0-1ubuntu1~20.04.2) 9.4.0", "gcc", (9, 4, 0)),
    ("Ubuntu clang version 14.0.0-1ubuntu1.1", "clang", (14, 0, 0)),
    ("Apple clang version 15.0.0 (clang-1500.3.9.4)", "clang", (15, 0, 0)),
    ("", "gcc", None),
])
def test_parse_compiler(text, family, version):
    assert parse_compiler_version(text) == (family, version)


@pytest.mark.parametrize("cuda, gcc", [((10, 2), 8), ((11, 0), 9), ((11, 3), 10), ((11, 8), 11), ((12, 1), 12),
                                       ((12, 4), 13), ((12, 6), 13), ((12, 7), 13), ((12, 8), 14), ((13, 0), 15),
                                       ((13, 2), 15), ((8, 0), None)])
def test_gcc_limits_table(cuda, gcc):
    assert max_gcc_for_cuda(cuda) == gcc


def test_host_config_is_read_and_version_checked(tmp_path):
    root = tmp_path / "cuda"
    (root / "include" / "crt").mkdir(parents=True)
    (root / "include" / "crt" / "host_config.h").write_text(
        "#if defined(__GNUC__)\n#if __GNUC__ > 15\n\n#error -- unsupported GNU version! gcc versions later than 15\n")
    (root / "include" / "cuda.h").write_text("#define CUDA_VERSION 13000\n")
    assert host_config_max_gcc(str(root)) == 15
    assert host_config_max_gcc([str(root)], (13, 0)) == 15
    assert host_config_max_gcc([str(root)], (11, 8)) is None  # that header belongs to another toolkit
    assert host_config_max_gcc([str(tmp_path / "none")]) is None


@pytest.mark.parametrize("value, fragment", [
    (":/usr/local/cuda-11.2", "path separator"),
    ("/usr/local/cuda-11.2:", "path separator"),
    ("/usr/local/cuda-11.2:/usr/local/cuda-12.1", "several paths"),
    ("/usr/local/cuda/bin", "bin folder"),
    ("'/usr/local/cuda'", "quote"),
    (" /usr/local/cuda", "spaces"),
])
def test_env_value_problems(value, fragment):
    assert any(fragment in p for p in env_value_problems("CUDA_HOME", value))


def test_env_value_fine():
    assert env_value_problems("CUDA_HOME", "/usr/local/cuda-12.1") == []


def _toolkit(root):
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "nvcc").write_text("")
    (root / "include").mkdir()
    (root / "include" / "cuda_runtime.h").write_text("")
    return str(root / "bin" / "nvcc")


def test_resolve_cuda_order(tmp_path):
    home_nvcc = _toolkit(tmp_path / "home")
    path_nvcc = _toolkit(tmp_path / "onpath")
    res = resolve_cuda({"CUDA_HOME": str(tmp_path / "home")}, path_nvcc, default_roots=())
    assert (res.source, res.nvcc) == ("CUDA_HOME", home_nvcc) and any("not the one in" in n for n in res.notes)
    res = resolve_cuda({"CUDA_PATH": str(tmp_path / "home")}, None, default_roots=())
    assert res.source == "CUDA_PATH"
    res = resolve_cuda({}, path_nvcc, default_roots=())
    assert (res.source, res.nvcc) == ("PATH", path_nvcc)
    res = resolve_cuda({}, None, default_roots=(str(tmp_path / "home"),))
    assert res.source == str(tmp_path / "home")
    assert resolve_cuda({}, None, default_roots=()).nvcc is None


def test_resolve_cuda_wrapper_without_headers(tmp_path):
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    wrapper = tmp_path / "usr" / "bin" / "nvcc"
    wrapper.write_text("#!/bin/sh\nexec /elsewhere/nvcc \"$@\"\n")
    res = resolve_cuda({}, str(wrapper), default_roots=())
    assert res.nvcc == str(wrapper) and any("no include/cuda_runtime.h" in n for n in res.notes)


def test_resolve_cuda_home_without_nvcc(tmp_path):
    res = resolve_cuda({"CUDA_HOME": str(tmp_path / "nope")}, None, default_roots=())
    assert any("does not exist" in p for p in res.problems)


def test_torch_build_from_file(tmp_path):
    path = tmp_path / "version.py"
    path.write_text("from typing import Optional\n__version__ = '2.5.1+cu121'\ndebug = False\n"
                    "cuda: Optional[str] = '12.1'\nhip: Optional[str] = None\n")
    assert torch_build_from_file(str(path)) == {"version": "2.5.1+cu121", "cuda": "12.1", "hip": None}
    old = tmp_path / "old.py"
    old.write_text("__version__ = '1.13.1'\ncuda = None\n")
    assert torch_build_from_file(str(old)) == {"version": "1.13.1", "cuda": None}
    assert torch_build_from_file(None) == {} and torch_build_from_file(str(tmp_path / "x")) == {}


def test_real_torch_version_file_parses_like_the_import():
    torch = pytest.importorskip("torch")
    parsed = torch_build_from_file(os.path.join(os.path.dirname(torch.__file__), "version.py"))
    assert parsed["version"] == torch.__version__ and parsed["cuda"] == torch.version.cuda

"""Checks of the `extension` and `compat` categories, every outcome, on fake machines and temp folders."""

import os
import time

import pytest

from decaenv.doctor.checks import compat, extension
from decaenv.doctor.model import CheckResult, Status
from decaenv.doctor.testing import FakeProbe, make_context


def _ctx(environ=None, files=None, sections=None, **kw):
    return make_context(FakeProbe(environ=environ or {}, files=files or {}, sections=sections or {}), **kw)


def _ext(root, name, files=(), lock_age=None):
    folder = root / name
    folder.mkdir(parents=True)
    for f in files:
        (folder / f).write_text("x")
    if lock_age is not None:
        lock = folder / "lock"
        lock.write_text("")
        os.utime(lock, (time.time() - lock_age, time.time() - lock_age))
    return folder


def test_extension_root_follows_torch(tmp_path, cpu_torch, cuda_torch):
    env = {"HOME": str(tmp_path)}
    root, base = extension.extension_root(_ctx(env, cpu_torch))
    assert root == str(tmp_path / ".cache" / "torch_extensions" / "py311_cpu") and base.endswith("torch_extensions")
    root, _ = extension.extension_root(_ctx(dict(env, XDG_CACHE_HOME=str(tmp_path / "xdg")), cuda_torch))
    assert root == str(tmp_path / "xdg" / "torch_extensions" / "py311_cu121")
    root, base = extension.extension_root(_ctx({"TORCH_EXTENSIONS_DIR": "/custom"}, cpu_torch))
    assert (root, base) == ("/custom", None)


def test_stale_lock_fails_with_fix(tmp_path, cpu_torch):
    _ext(tmp_path, "standard_rasterize_cuda", ["a.so", "build.ninja"], lock_age=3600)
    result = extension.check_extension_cache(_ctx({"TORCH_EXTENSIONS_DIR": str(tmp_path)}, cpu_torch))
    assert result.status is Status.FAIL and "hangs forever" in result.summary
    lock = str(tmp_path / "standard_rasterize_cuda" / "lock")
    assert result.remediation.commands == (f"rm -f {lock}",)
    assert [(f.kind, f.args["path"]) for f in result.fixes] == [("remove-path", lock)]


def test_fresh_lock_partial_and_foreign_builds_warn(tmp_path, cpu_torch):
    _ext(tmp_path, "busy", ["a.o"], lock_age=5)
    result = extension.check_extension_cache(_ctx({"TORCH_EXTENSIONS_DIR": str(tmp_path)}, cpu_torch))
    assert result.status is Status.WARN and "running now" in result.summary
    assert result.data["partial"] == [str(tmp_path / "busy")]


def test_partial_build(tmp_path, cpu_torch):
    _ext(tmp_path, "half", ["half.o", "build.ninja"])
    result = extension.check_extension_cache(_ctx({"TORCH_EXTENSIONS_DIR": str(tmp_path)}, cpu_torch))
    assert result.status is Status.WARN and "partial build" in result.summary
    assert result.fixes[0].args["path"] == str(tmp_path / "half")


def test_build_by_another_torch(tmp_path, cpu_torch):
    other_site = tmp_path / "other" / "site"
    (other_site / "torch").mkdir(parents=True)
    (other_site / "torch" / "version.py").write_text("__version__ = '2.1.0+cu118'\ncuda = '11.8'\n")
    folder = _ext(tmp_path / "ext", "rast", ["rast.so"])
    (folder / "build.ninja").write_text(f"cflags = -isystem {other_site}/torch/include -isystem x\n")
    same_site = tmp_path / "same" / "site"
    (same_site / "torch").mkdir(parents=True)
    (same_site / "torch" / "version.py").write_text("__version__ = '2.13.0+cpu'\ncuda = None\n")
    twin = _ext(tmp_path / "ext", "twin", ["twin.so"])
    (twin / "build.ninja").write_text(f"cflags = -isystem {same_site}/torch/include\n")
    result = extension.check_extension_cache(_ctx({"TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")}, cpu_torch))
    assert result.status is Status.WARN and "torch 2.1.0+cu118" in result.summary
    assert result.data["foreign"] == [str(folder)]  # the twin (same torch, other venv) is fine


def test_clean_cache_and_path_with_spaces(tmp_path, cpu_torch):
    _ext(tmp_path / "ok", "good", ["good.so"])
    clean = extension.check_extension_cache(_ctx({"TORCH_EXTENSIONS_DIR": str(tmp_path / "ok")}, cpu_torch))
    assert clean.status is Status.OK
    spaced = tmp_path / "my project (copy)"
    spaced.mkdir()
    result = extension.check_extension_cache(_ctx({"TORCH_EXTENSIONS_DIR": str(spaced)}, cpu_torch))
    assert result.status is Status.WARN and "spaces" in result.summary


def test_rasterizer_backends():
    fallback = {"backends": {"torch": {"usable": True, "reason": "pure torch"}},
                "choice": {"cpu": "torch", "cuda": None}}
    result = extension.check_rasterizer(_ctx(sections={"rasterizer": fallback}))
    assert result.status is Status.OK and result.summary == "CPU: the pure-torch rasterizer"
    full = {"backends": {"cpu": {"usable": True}, "cuda": {"usable": True}, "torch": {"usable": True}},
            "choice": {"cpu": "cpu", "cuda": "cuda"}, "extension": {"summary": "built (cpu, cuda)", "built": True}}
    result = extension.check_rasterizer(_ctx(sections={"rasterizer": full}))
    assert result.summary == "CPU: the compiled CPU rasterizer; CUDA: the CUDA rasterizer" and not result.fixes
    none = {"backends": {"torch": {"usable": False, "reason": "broken"}}, "choice": {}}
    assert extension.check_rasterizer(_ctx(sections={"rasterizer": none})).status is Status.FAIL


def _raster(ext):
    return {"rasterizer": {"backends": {"cpu": {"usable": False, "reason": "not built"},
                                                     "torch": {"usable": True}},
                           "choice": {"cpu": "torch", "cuda": None}, "extension": ext}}


def test_rasterizer_extension_states():
    not_built = extension.check_rasterizer(_ctx(sections=_raster({"summary": "not built (run `decaenv build`)",
                                                                   "built": False, "variants": {}})))
    assert not_built.status is Status.OK and "decaenv build" in not_built.summary
    assert not_built.fixes[0].kind == "build-rasterizer"
    stale = extension.check_rasterizer(_ctx(sections=_raster({
        "summary": "x", "built": False,
        "variants": {"cpu": {"built": True, "usable": False,
                             "problem": "the cpu build is from other decaenv sources"}}})))
    assert stale.status is Status.WARN and "other decaenv sources" in stale.summary
    failed_before = extension.check_rasterizer(_ctx(sections=_raster({
        "summary": "not built", "built": False, "variants": {}, "build_in_progress": None,
        "last_error": {"cause": "the host compiler is newer than this nvcc supports", "fix": "install gcc 11",
                       "log": "/b/build-cuda.log"}})))
    assert any("last `decaenv build` failed: the host compiler" in d for d in failed_before.details)


GCC_TOO_NEW_LOG = """[1/3] /usr/local/cuda/bin/nvcc -c k.cu -o k.cuda.o
In file included from /usr/local/cuda/include/cuda_runtime.h:83,
/usr/local/cuda/include/crt/host_config.h:132:2: error: #error -- unsupported GNU version! gcc versions later than 11 \
are not supported!
ninja: build stopped: subcommand failed."""


def test_build_probe_outcomes():
    assert extension.check_build(_ctx(no_build=True)).status is Status.SKIP
    ctx = _ctx(sections={"build": {}})
    ctx.results["cxx-compiler"] = CheckResult(Status.WARN, "no C++ compiler ('c++') on PATH: ...")
    assert "no C++ compiler" in extension.check_build(ctx).summary
    good = {"sources": "decaenv's rasterizer (decaenv/runtime/csrc)", "cpu": {"target": "cpu", "ok": True, "seconds": 28.0, "log": ""},
            "cuda": None, "cuda_skipped": "torch is a CPU build"}
    result = extension.check_build(_ctx(sections={"build": good}))
    assert result.status is Status.OK and result.summary.startswith("CPU extension builds and runs")
    bad = dict(good, cuda={"target": "cuda", "ok": False, "seconds": 3.0, "log": GCC_TOO_NEW_LOG,
                           "error": "RuntimeError: Error building extension 'decaenv_probe_cuda_1'"})
    result = extension.check_build(_ctx(sections={"build": bad}))
    assert result.status is Status.WARN and "host compiler is newer than this nvcc" in result.summary
    assert result.data["cause"] == "gcc-too-new" and result.fm == ("FM03",)
    assert "unsupported GNU version" in result.data["first_error"]
    theirs = dict(good, sources="decaenv csrc", cpu={"target": "cpu", "ok": False, "seconds": 9.0, "log": "...",
                  "diagnosis": {"cause_id": "aten-api", "cause": "the source uses a removed ATen API",
                                "fix": "use .scalar_type()", "first_error": "k.cu(244): error: no suitable conversion",
                                "failure_mode": "FM05"}})
    result = extension.check_build(_ctx(sections={"build": theirs}))
    assert result.data["cause"] == "aten-api" and result.fm == ("FM05",)
    assert result.remediation.text == "use .scalar_type()"


@pytest.mark.parametrize("answer, status, text", [
    ({"installed": False}, Status.OK, "not installed"),
    ({"installed": True, "version": "0.7.5", "import": {"importable": False,
      "error": "ImportError: _C.so: undefined symbol: _ZNK2at6Tensor7is_cudaEv"}}, Status.WARN, "another torch"),
    ({"installed": True, "import": {"importable": True}, "ext": {"importable": True},
      "structures": {"importable": False, "error": "ModuleNotFoundError: No module named 'iopath'"}},
     Status.WARN, "iopath"),
    ({"installed": True, "version": "0.7.9", "import": {"importable": True}, "ext": {"importable": True},
      "structures": {"importable": True}, "renderer": {"importable": True}, "cpu": "ok",
      "cuda": "RuntimeError: Not compiled with GPU support"}, Status.WARN, "CUDA tensors"),
    ({"installed": True, "version": "0.7.9", "import": {"importable": True}, "ext": {"importable": True},
      "structures": {"importable": True}, "renderer": {"importable": True}, "cpu": "RuntimeError: x"}, Status.WARN,
     "cannot rasterize on the CPU"),
    ({"installed": True, "version": "0.7.9", "import": {"importable": True}, "ext": {"importable": True},
      "structures": {"importable": True}, "renderer": {"importable": True}, "cpu": "ok", "cuda": "ok"}, Status.OK,
     "CPU and CUDA"),
])
def test_pytorch3d(answer, status, text):
    result = extension.check_pytorch3d(_ctx(sections={"pytorch3d": answer}))
    assert result.status is status and text in result.summary


def test_compat_shims():
    rows = [{"id": "face-alignment-api", "reason": "_2D renamed", "needed": True, "active": False},
            {"id": "numpy-aliases", "reason": "np.int", "needed": False, "active": None}]
    result = compat.check_compat(_ctx(sections={"compat": {"patches": rows}}))
    assert result.status is Status.OK and "needed here: face-alignment-api" in result.summary
    assert "numpy-aliases: not needed" in result.details[1]
    rows.append({"id": "bad", "needed": None, "error": "ImportError: x"})
    assert compat.check_compat(_ctx(sections={"compat": {"patches": rows}})).status is Status.WARN

"""Build hygiene, the build lock, the loader and `build()` outcomes (no compiler needed unless marked ext)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from decaenv.errors import BuildError
from decaenv.runtime.rasterizer import _env, build, extension, extension_status

CSRC = _env.csrc_dir()


# --- static checks of the sources -------------------------------------------------------------------------


def test_translation_units_have_distinct_stems():
    from decaenv.runtime.rasterizer import _env

    units = [p for p in CSRC.rglob("*") if p.suffix in (".cpp", ".cu")]
    stems = [p.stem for p in units]
    assert len(stems) == len(set(stems)), stems  # ninja's objects are named by stem
    assert sorted(p.relative_to(CSRC).as_posix() for p in units) == sorted(_env.translation_units("cuda"))


def test_one_registration_file():
    registering = [
        p.name
        for p in CSRC.rglob("*")
        if p.is_file() and re.search(r"TORCH_LIBRARY(_IMPL)?\s*\(|PYBIND11_MODULE", p.read_text())
    ]
    assert registering == ["ext.cpp"]


def test_sources_use_todays_aten_api_and_no_forced_flags():
    for path in _env.source_files():
        text = path.read_text()
        assert not re.search(r"(?<!device\(\))\.type\(\)", text), path  # Tensor::type() (FM05)
        assert not re.search(r"\.data<", text), path
    for module in ("builder.py", "_worker.py"):
        code = (Path(_env.__file__).parent / module).read_text()
        assert not re.search(r"[\"'](-ccbin|-std=|--std)", code), module  # torch picks the standard (FM02/FM04)


def test_every_source_is_compiled_by_some_variant():
    compiled = set(_env.translation_units("cuda"))
    units = {p.relative_to(CSRC).as_posix() for p in CSRC.rglob("*") if p.suffix in (".cpp", ".cu")}
    assert compiled == units and "cuda/rasterize_cuda.cu" not in _env.translation_units("cpu")


def test_environment_key_names_python_torch_cuda_and_machine():
    key = _env.env_key()
    assert key.name.startswith(f"py{sys.version_info[0]}.{sys.version_info[1]}-torch")
    assert ("cpu" if torch.version.cuda is None else f"cu{torch.version.cuda}") in key.name
    assert "+" not in key.name and "/" not in key.name


# --- the lock (decaenv._process.ProcessLock, tested in tests/test_process.py) ---------------------------


def _write_lock(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": time.time(), "purpose": "test"}))


# --- the loader -------------------------------------------------------------------------------------------


def _fake_build(root: Path, variant: str = "cpu", **record) -> Path:
    folder = root / _env.env_key().name
    folder.mkdir(parents=True)
    library = folder / _env.library_file(variant)
    library.write_bytes(b"not a shared library")
    data = {"variant": variant, "source_digest": _env.source_digest(), "verified": True}
    data.update(record)
    (folder / f"{variant}.json").write_text(json.dumps(data))
    return library


def test_build_from_other_sources_is_not_usable(tmp_path):
    _fake_build(tmp_path, source_digest="0" * 16)
    status = extension.find_variant("cpu", roots=[tmp_path])
    assert status.built and not status.usable and "other decaenv sources" in status.problem


def test_unverified_build_is_not_usable(tmp_path):
    _fake_build(tmp_path, verified=False)
    status = extension.find_variant("cpu", roots=[tmp_path])
    assert not status.usable and "failed its check" in status.problem


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=dict(os.environ, **env)
    )


def test_import_and_rasterize_never_compile(tmp_path):
    home = tmp_path / "home"
    code = (
        "import sys, decaenv.runtime.rasterizer as R\n"
        "from decaenv.runtime.rasterizer.verify import random_face_vertices\n"
        "f = R.rasterize(random_face_vertices(50), 16, 16)\n"
        "print(f.backend, 'torch.utils.cpp_extension' in sys.modules, R.extension_status().summary())\n"
    )
    out = _python(code, {"DECAENV_HOME": str(home), "DECAENV_EXT_PATH": ""})
    assert out.returncode == 0, out.stderr
    backend, imported_builder, summary = out.stdout.split(" ", 2)
    assert backend in ("torch", "pytorch3d") and imported_builder == "False"
    assert "not built" in summary and "decaenv build" in summary
    assert not (home / "cache" / "build").exists()
    assert "using the" in out.stderr and "decaenv build" in out.stderr  # the one-line notice


def test_broken_library_falls_back_with_a_reason(tmp_path):
    _fake_build(tmp_path)
    code = (
        "import decaenv.runtime.rasterizer as R\n"
        "from decaenv.runtime.rasterizer import extension\n"
        "from decaenv.runtime.rasterizer.verify import random_face_vertices\n"
        "print(R.rasterize(random_face_vertices(50), 16, 16).backend)\n"
        "print(extension.load_error())\n"
    )
    out = _python(code, {"DECAENV_EXT_PATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    backend, error = out.stdout.splitlines()[:2]
    assert backend in ("torch", "pytorch3d") and error.startswith("loading ") and "failed" in error


@pytest.mark.ext
def test_fresh_process_loads_the_published_build(built_extension):
    code = (
        "import decaenv.runtime.rasterizer as R\n"
        "from decaenv.runtime.rasterizer.verify import random_face_vertices\n"
        "s = R.extension_status()\n"
        "print(R.rasterize(random_face_vertices(50), 16, 16).backend, s.built, s.variants['cpu'].usable "
        "or s.variants['cuda'].usable)\n"
    )
    out = _python(code, {"DECAENV_EXT_PATH": str(built_extension)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cpu", "True", "True"]


@pytest.mark.ext
def test_status_of_the_session_build(built_extension):
    status = extension_status(roots=[built_extension])
    usable = [v for v in status.variants.values() if v.usable]
    assert status.built and usable and usable[0].record["verified"]
    assert usable[0].record["torch"] == torch.__version__ and usable[0].record["seconds"] > 0
    assert status.loaded in ("cpu", "cuda") and "built (" in status.summary()
    assert json.loads(json.dumps(status.to_dict(), default=str))["key"] == status.key


# --- build() outcomes without compiling -------------------------------------------------------------------


def test_missing_ninja_is_diagnosed_before_compiling(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = build(cpu=True, root=tmp_path)
    [variant] = result.variants
    assert not result.ok and variant.status == "failed" and variant.diagnosis.cause_id == "no-ninja"
    record = json.loads((tmp_path / _env.env_key().name / "last-error.json").read_text())
    assert record["diagnosis"]["cause_id"] == "no-ninja"


def test_missing_compiler_is_diagnosed_before_compiling(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    result = build(cpu=True, root=tmp_path)
    diag = result.variants[0].diagnosis
    if diag.cause_id == "no-ninja":
        pytest.skip("no ninja here: the compiler check comes after it")
    assert diag.cause_id == "no-compiler" and "no-such-compiler" in diag.first_error


@pytest.mark.skipif(bool(torch.version.cuda), reason="a CUDA build of torch can build the CUDA variant")
def test_cuda_on_a_cpu_torch_is_refused_with_the_cause(tmp_path):
    result = build(cuda=True, root=tmp_path)
    diag = result.variants[0].diagnosis
    assert not result.ok and diag.cause_id == "cpu-torch" and "--cpu" in diag.fix


@pytest.mark.skipif(bool(torch.version.cuda), reason="a CUDA build of torch plans the CUDA variant too")
def test_default_plan_on_a_cpu_torch_is_cpu_only():
    from decaenv.runtime.rasterizer.builder import plan

    assert plan(None, None) == ["cpu"] and plan(None, True) == ["cuda"] and plan(True, True) == ["cpu", "cuda"]


@pytest.mark.ext
def test_build_waits_for_a_live_lock_then_gives_up(tmp_path):
    _write_lock(tmp_path / _env.env_key().name / "build.lock", os.getpid())
    start = time.monotonic()
    with pytest.raises(BuildError, match="another decaenv build is running"):
        build(cpu=True, root=tmp_path, lock_timeout=0.5)
    assert time.monotonic() - start < 10


@pytest.mark.ext
def test_up_to_date_build_is_not_rebuilt(built_extension):
    variant = "cuda" if torch.cuda.is_available() else "cpu"
    start = time.monotonic()
    result = build(cpu=variant == "cpu", cuda=variant == "cuda", root=built_extension)
    assert result.ok and result.variants[0].status == "up-to-date" and time.monotonic() - start < 10

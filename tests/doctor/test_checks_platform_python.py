"""Checks of the `platform` and `python` categories, one test per outcome, on fake machines."""

import pytest

from decaenv.doctor.checks import python_pkgs, system
from decaenv.doctor.model import Status
from decaenv.doctor.probe import PlatformInfo
from decaenv.doctor.testing import FakeProbe, make_context


def _plat(system_="Linux", version=(3, 11, 7), impl="CPython", bits=64, release="6.1.0", distro="Debian 12"):
    return PlatformInfo(system_, release, "x86_64", version, impl, "/venv/bin/python", wsl="microsoft" in release,
                        distro=distro, bits=bits)


def _run(func, **probe):
    return func(make_context(FakeProbe(**probe)))


@pytest.mark.parametrize("plat, status, text", [
    (_plat(), Status.OK, "Debian 12"),
    (_plat(release="5.15.0-microsoft-standard-WSL2"), Status.OK, "WSL"),
    (_plat("Windows", release="11"), Status.OK, "CPU path works"),
    (_plat("Darwin", release="23.1"), Status.OK, "no CUDA on macOS"),
    (_plat("FreeBSD"), Status.WARN, "not a platform decaenv is tested on"),
])
def test_os(plat, status, text):
    result = _run(system.check_os, platform=plat)
    assert result.status is status and text in result.summary


def test_os_windows_says_what_works():
    details = " ".join(_run(system.check_os, platform=_plat("Windows")).details)
    assert "pure-torch rasterizer" in details and "cl.exe" in details and "WSL2" in details


@pytest.mark.parametrize("plat, status, text", [
    (_plat(version=(3, 10, 13)), Status.OK, "CPython 3.10.13"),
    (_plat(version=(3, 8, 18)), Status.FAIL, "older than decaenv supports"),
    (_plat(bits=32), Status.FAIL, "32-bit"),
    (_plat(impl="PyPy"), Status.WARN, "CPython only"),
    (_plat(version=(3, 15, 0)), Status.WARN, "newer than decaenv is tested"),
])
def test_python_version(plat, status, text):
    result = _run(system.check_python, platform=plat)
    assert result.status is status and text in result.summary


def test_python_311_mentions_chumpy():
    assert any("getargspec" in d for d in _run(system.check_python, platform=_plat()).details)
    assert not _run(system.check_python, platform=_plat(version=(3, 10, 1))).details


@pytest.mark.parametrize("answer, status, text", [
    ({"importable": False, "error": "ImportError: libopenblas.so"}, Status.FAIL, "cannot be imported"),
    ({"importable": True, "version": "1.19.5", "aliases_missing": []}, Status.FAIL, "older than decaenv"),
    ({"importable": True, "version": "1.23.5", "aliases_missing": []}, Status.OK, "still has the old aliases"),
    ({"importable": True, "version": "2.4.6", "aliases_missing": ["int", "float"]}, Status.OK, "numpy 2.4.6"),
])
def test_numpy(answer, status, text):
    result = _run(python_pkgs.check_numpy, sections={"numpy": answer})
    assert result.status is status and text in result.summary


def test_numpy_remediation_uses_the_probed_interpreter():
    result = _run(python_pkgs.check_numpy, sections={"numpy": {"importable": False, "error": "x"}},
                  python="/opt/env/bin/python")
    assert result.remediation.commands[0].startswith("/opt/env/bin/python -m pip install")


@pytest.mark.parametrize("answer, status, text", [
    ({"installed": False}, Status.OK, "not needed"),
    ({"installed": True, "importable": True, "version": "0.71"}, Status.OK, "imports"),
    ({"installed": True, "importable": False, "version": "0.70", "cause": "getargspec",
      "error": "AttributeError: module 'inspect' has no attribute 'getargspec'"}, Status.WARN, "getargspec"),
    ({"installed": True, "importable": False, "version": "0.70", "cause": "numpy-alias",
      "error": "ImportError: cannot import name 'bool' from 'numpy' (/v/numpy/__init__.py)"}, Status.WARN,
     "does not import: ImportError: cannot import name 'bool' from 'numpy'"),
])
def test_chumpy(answer, status, text):
    result = _run(python_pkgs.check_chumpy, sections={"chumpy": answer})
    assert result.status is status and text in result.summary
    assert "/v/numpy" not in result.summary
    if answer.get("cause"):
        assert python_pkgs.CHUMPY_CAUSES[answer["cause"]] == result.details[0]


def test_flame_loader():
    good = _run(python_pkgs.check_flame_loader, sections={"flame-selftest": {"ok": True, "seconds": 0.01}})
    bad = _run(python_pkgs.check_flame_loader, sections={"flame-selftest": {"ok": False, "error": "DataError: x"}})
    leaked = _run(python_pkgs.check_flame_loader, sections={"flame-selftest": {"ok": True, "chumpy_imported": True}})
    assert good.status is Status.OK and bad.status is Status.FAIL and leaked.status is Status.FAIL


def _pkgs(**over):
    base = {m: {"installed": True, "importable": True, "version": "1.0"} for m in ("scipy", "skimage", "PIL", "gdown")}
    base["gdown"]["version"] = "6.5.1"
    base.update(over)
    return {"runtime-packages": base}


def test_runtime_packages():
    assert _run(python_pkgs.check_runtime_packages, sections=_pkgs()).status is Status.OK
    missing = _run(python_pkgs.check_runtime_packages, sections=_pkgs(skimage={"installed": False}))
    assert missing.status is Status.FAIL and "scikit-image" in missing.summary
    assert "decaenv[runtime]" in missing.remediation.commands[0]
    assert missing.fixes[0].kind == "pip-install" and missing.fixes[0].needs_yes
    broken = _run(python_pkgs.check_runtime_packages,
                  sections=_pkgs(PIL={"installed": True, "importable": False, "error": "ImportError: _imaging"}))
    assert broken.status is Status.FAIL and "fail to import" in broken.summary


def test_gdown(tmp_path):
    none = {"installed": False}
    assert _run(python_pkgs.check_gdown, sections=_pkgs(gdown=none)).status is Status.WARN
    (tmp_path / "deca_model.tar").write_bytes(b"x")
    have = python_pkgs.check_gdown(make_context(FakeProbe(sections=_pkgs(gdown=none)), data_dir=tmp_path))
    assert have.status is Status.OK and "already present" in have.summary
    old = _run(python_pkgs.check_gdown,
               sections=_pkgs(gdown={"installed": True, "importable": True, "version": "3.12.2"}))
    assert old.status is Status.WARN and "too old" in old.summary
    broken = _run(python_pkgs.check_gdown, sections=_pkgs(gdown={"installed": True, "importable": False, "error": "x"}))
    assert broken.status is Status.WARN
    assert _run(python_pkgs.check_gdown, sections=_pkgs()).status is Status.OK


FA_URLS = ["https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
           "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"]


def _fa(**over):
    base = {"installed": True, "version": "1.5.0", "urls": FA_URLS, "hub_dir": "/h/hub/checkpoints",
            "hub_files": ["2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth"], "import": {"importable": True},
            "landmarks_members": ["TWO_D", "TWO_HALF_D", "THREE_D"],
            "defaults": {"device": "'cuda'", "compile": "True", "flip_input": "True"}}
    base.update(over)
    return {"face-alignment": base}


def test_face_alignment_outcomes():
    assert _run(python_pkgs.check_face_alignment, sections={"face-alignment": {"installed": False}}).status is Status.OK
    ok = _run(python_pkgs.check_face_alignment, sections=_fa())
    assert ok.status is Status.OK and "TWO_D API, weights cached" in ok.summary
    assert any("compile=True" in d for d in ok.details) and any("device='cpu'" in d for d in ok.details)
    cold = _run(python_pkgs.check_face_alignment, sections=_fa(hub_files=[]))
    assert cold.status is Status.WARN and "needs internet" in cold.summary
    assert cold.remediation.commands[0] == "decaenv fetch fan" and "compile=False" in cold.remediation.commands[1]
    old = _run(python_pkgs.check_face_alignment, sections=_fa(landmarks_members=["_2D", "_2halfD", "_3D"], defaults={}))
    assert old.status is Status.OK and "_2D API" in old.summary
    neither = _run(python_pkgs.check_face_alignment, sections=_fa(landmarks_members=["TWO"]))
    assert neither.status is Status.WARN
    libgl = _run(python_pkgs.check_face_alignment, sections=_fa(
        **{"import": {"importable": False, "error": "ImportError: libGL.so.1: cannot open shared object file"}}))
    assert libgl.status is Status.WARN and "libgl1" in libgl.remediation.commands[0]

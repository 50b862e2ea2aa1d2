"""The distributions: `python -m build` makes an sdist and a wheel (the wheel from the sdist), `twine check`
passes, the metadata is complete, the wheel holds what the CLI needs, and the wheel installed into a fresh
venv (no checkout on the path) runs `decaenv --version`, `doctor --json` and `selftest`.

Offline: the build runs without isolation (hatchling from the test extra); the fresh venv gets decaenv from the
wheel only and reaches its dependencies (torch, numpy, typer, ...) through a path entry to this venv's
site-packages, whose editable-install `.pth` files are not processed there (asserted: the checkout is not
importable from the fresh venv).
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from _support.pip import install_target

import decaenv

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(argv, **kwargs):
    kwargs.setdefault("timeout", 900)
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    run = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist) -> Path:
    (found,) = dist.glob("decaenv-*.whl")
    return found


@pytest.fixture(scope="module")
def names(wheel):
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_build_makes_one_sdist_and_one_wheel(dist):
    version = decaenv.__version__
    assert sorted(p.name for p in dist.iterdir()) == [
        f"decaenv-{version}-py3-none-any.whl",
        f"decaenv-{version}.tar.gz",
    ]


def test_wheel_holds_manifest_csrc_docs_and_licence(names):
    csrc = sorted(
        p.relative_to(REPO).as_posix() for p in (REPO / "decaenv" / "runtime" / "csrc").rglob("*") if p.is_file()
    )
    assert len(csrc) >= 6 and set(csrc) <= names  # `decaenv build` compiles these from the installed package
    assert {
        "decaenv/manifests/deca.toml",
        "decaenv/py.typed",
        "decaenv/docs/doctor-json.md",
        "decaenv/docs/commands/fetch.md",
        "decaenv/docs/commands/build.md",
    } <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "bench/", "scripts/"))]
    assert not [n for n in names if n.endswith((".pkl", ".tar", ".npz", ".npy", ".pt", ".so"))]  # no data, no build


def test_every_doc_the_cli_names_is_in_the_wheel(names):
    named = set()
    for path in (REPO / "decaenv" / "cli").glob("*.py"):
        named |= set(re.findall(r"docs/([\w/-]+\.md)", path.read_text()))
    assert named, "the CLI's help names no docs page (this test would check nothing)"
    assert {f"decaenv/docs/{n}" for n in named} <= names


def test_metadata_is_complete(names, wheel):
    (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    with zipfile.ZipFile(wheel) as zf:
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
    assert meta["Name"] == "decaenv" and meta["Version"] == decaenv.__version__
    assert meta["License-Expression"] == "MIT" and meta["License-File"] == "LICENSE"
    assert meta["Requires-Python"] == ">=3.9" and meta["Summary"]
    assert meta["Description-Content-Type"] == "text/markdown"
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.13" in classifiers and len(classifiers) >= 10
    assert len(meta.get_all("Project-URL")) >= 2
    assert {"runtime", "fetch", "fan", "video", "test", "dev"} <= set(meta.get_all("Provides-Extra"))
    typer = [r for r in meta.get_all("Requires-Dist") if r.startswith("typer")]
    assert typer == ["typer>=0.12"]  # no upper cap: installs beside current typer
    with zipfile.ZipFile(wheel) as zf:
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "decaenv = decaenv.cli:main" in entry_points


def test_twine_check_is_clean(dist):
    pytest.importorskip("twine")
    run = _run([sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())])
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("PASSED") == 2 and "WARNING" not in run.stdout


def test_sdist_holds_what_rebuilds_and_tests_it(dist):
    import tarfile

    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        members = {m.split("/", 1)[1] for m in tf.getnames() if "/" in m}
    assert {
        "pyproject.toml",
        "LICENSE",
        "README.md",
        "Makefile",
        "manifests/deca.toml",
        "Dockerfile",
        "docs/colab.ipynb",
        "decaenv/runtime/csrc/ext.cpp",
        "tests/conftest.py",
    } <= members


# -- the wheel in a fresh venv ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_venv(wheel, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert made.returncode == 0, made.stderr
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    installed = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            "--no-compile",
            "-q",
            wheel,
        ]
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(site, "_decaenv_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _fresh_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DECAENV_"))}
    env.update(DECAENV_HOME=str(tmp_path / "home"), DECAENV_DATA_DIR=str(tmp_path / "data"), NO_COLOR="1")
    return env


def test_the_wheel_not_the_checkout_is_imported(fresh_venv, tmp_path):
    code = "import decaenv, sys; print(decaenv.__file__); print('\\n'.join(sys.path))"
    run = _run([fresh_venv / "bin" / "python", "-c", code], cwd=tmp_path, env=_fresh_env(tmp_path))
    first, *path = run.stdout.splitlines()
    assert run.returncode == 0 and Path(first).is_relative_to(fresh_venv), run.stdout + run.stderr
    assert str(REPO) not in path


def test_installed_cli_version_doctor_selftest(fresh_venv, tmp_path):
    env, cli = _fresh_env(tmp_path), fresh_venv / "bin" / "decaenv"
    version = _run([cli, "--version"], cwd=tmp_path, env=env)
    assert version.returncode == 0 and version.stdout.strip() == f"decaenv {decaenv.__version__}"
    doctor = _run([cli, "doctor", "--json", "--no-build"], cwd=tmp_path, env=env)
    assert doctor.returncode in (0, 1), doctor.stderr
    report = json.loads(doctor.stdout)
    rows = {c["id"]: c for c in report["checks"]}
    assert "manifest cannot be read" not in rows["data-files"]["summary"]  # the packaged manifest is found
    assert rows["torch"]["status"] == "ok"
    selftest = _run([cli, "selftest", "--out", tmp_path / "out"], cwd=tmp_path, env=env)
    assert selftest.returncode == 0, selftest.stdout[-2000:] + selftest.stderr[-2000:]
    assert "self-test: pass" in selftest.stdout + selftest.stderr
    assert (tmp_path / "out" / "astronaut_vis.jpg").is_file()


@pytest.mark.ext
def test_installed_cli_builds_the_rasterizer_from_the_packaged_sources(fresh_venv, tmp_path):
    env, cli = _fresh_env(tmp_path), fresh_venv / "bin" / "decaenv"
    run = _run([cli, "build", "--cpu", "--into", tmp_path / "builds", "--json"], cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (variant,) = json.loads(run.stdout)["variants"]
    assert variant["status"] == "built" and Path(variant["library"]).is_file()


def _readme_install_specs():
    """The quoted requirement of each `pip install "decaenv[...] @ ..."` line of the README's Install section."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Install\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return re.findall(r'pip install "(decaenv\[runtime,fetch\] @ [^"]+)"', block), block


def test_readme_install_lines_name_this_version_and_the_build():
    specs, block = _readme_install_specs()
    assert len(specs) == 2 and "python -m build" in block
    assert specs[0].endswith(f"/dist/decaenv-{decaenv.__version__}-py3-none-any.whl")  # kept in step with the version
    assert specs[1] == "decaenv[runtime,fetch] @ file://$PWD"  # works as written in the clone: no URL to fill in
    assert "OWNER" not in block


def test_readme_wheel_line_installs(dist, tmp_path):
    """The README's wheel line as written, `$PWD` being the clone that ran `python -m build`."""
    spec = _readme_install_specs()[0][0].replace("file://$PWD/dist", dist.as_uri())
    run = install_target(spec, tmp_path / "target")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "target" / "decaenv" / "manifests" / "deca.toml").is_file()


def test_readme_clone_line_installs(tmp_path):
    """The README's clone line as written, `$PWD` being a fresh clone of this repository."""
    clone = tmp_path / "clone"
    assert _run(["git", "clone", "-q", REPO, clone]).returncode == 0
    spec = _readme_install_specs()[0][1].replace("file://$PWD", clone.as_uri())
    run = install_target(spec, tmp_path / "target")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "target" / "decaenv" / "manifests" / "deca.toml").is_file()
    assert (tmp_path / "target" / "decaenv" / "runtime" / "csrc" / "ext.cpp").is_file()

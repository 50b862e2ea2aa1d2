"""The CLI edge: one-line errors, exit codes, DECAENV_DEBUG, global options."""

import subprocess
import sys

import typer

from decaenv.cli import app, main
from decaenv.cli._errors import run_app
from decaenv.errors import DataError


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "decaenv", *args], capture_output=True, text=True, env=env)


def test_unknown_command_is_one_line_exit_1():
    out = _run("frobnicate")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "No such command 'frobnicate'" in lines[0]
    assert "Traceback" not in out.stderr


def test_unknown_option_is_one_line_exit_1():
    out = _run("selftest", "--bogus")
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1 and "--bogus" in out.stderr


def test_no_arguments_prints_help(capsys):
    assert main([]) == 0
    assert "Usage" in capsys.readouterr().out


def _command_raising(exc):
    demo = typer.Typer()

    @demo.callback()
    def _root():
        pass

    @demo.command()
    def boom():
        raise exc

    return typer.main.get_command(demo)


def test_decaenv_error_is_one_line(capsys):
    code = run_app(_command_raising(DataError("file x is broken", hint="re-download it")), ["boom"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == "decaenv: error: file x is broken — re-download it"


def test_internal_error_exit_2_without_traceback(capsys):
    code = run_app(_command_raising(ZeroDivisionError("oops")), ["boom"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "internal error: ZeroDivisionError: oops" in err


def test_debug_env_shows_traceback(capsys, monkeypatch):
    monkeypatch.setenv("DECAENV_DEBUG", "1")
    code = run_app(_command_raising(DataError("bad")), ["boom"])
    assert code == 1 and "Traceback" in capsys.readouterr().err


def test_keyboard_interrupt_exit_130(capsys):
    assert run_app(_command_raising(KeyboardInterrupt()), ["boom"]) == 130
    assert capsys.readouterr().err.strip() == "decaenv: interrupted"


def test_global_options_reach_commands():
    assert {p.name for p in typer.main.get_command(app).params} >= {"data_dir", "verbose", "quiet", "version"}

"""The CLI edge: run the click command, turn every exception into a one-line message and an exit code.

`DECAENV_DEBUG=1` adds the traceback. Nothing else in decaenv prints errors or picks exit codes.
"""

from __future__ import annotations

import enum
import os
import sys
import traceback
from typing import List, Optional

from decaenv.errors import DecaenvError, os_error


class ExitStatus(enum.IntEnum):
    """Process exit codes (see `decaenv.errors`)."""

    SUCCESS = 0
    FAILURE = 1
    ERROR = 2
    INTERRUPTED = 130


def debug_enabled() -> bool:
    """True when `DECAENV_DEBUG` is set to something other than empty/0/false."""
    return os.environ.get("DECAENV_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _say(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


def _is_click_exception(exc: BaseException) -> bool:
    # typer vendors click in recent releases and uses the real click in older ones: duck-type both.
    return hasattr(exc, "exit_code") and hasattr(exc, "format_message")


def _usage_line(exc) -> str:
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "decaenv"
    message = " ".join(str(exc.format_message()).split())
    return f"decaenv: error: {message} (see `{path} --help`)"


def run_app(command, argv: Optional[List[str]]) -> int:
    """Run a click command without click's own exception handling and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["--help"]
    try:
        result = command.main(args=args, prog_name="decaenv", standalone_mode=False)
    except DecaenvError as exc:
        _say(f"decaenv: error: {exc.one_line()}")
        if debug_enabled():
            traceback.print_exc()
        return exc.exit_code
    except KeyboardInterrupt:
        _say("decaenv: interrupted")
        return ExitStatus.INTERRUPTED
    except OSError as exc:  # disk full, read-only, permissions...: the user's to fix, never a crash
        _say(f"decaenv: error: {os_error(exc).one_line()}")
        if debug_enabled():
            traceback.print_exc()
        return ExitStatus.FAILURE
    except Exception as exc:  # noqa: BLE001 - this is the edge: everything ends here
        if type(exc).__name__ == "Abort":
            _say("decaenv: interrupted")
            return ExitStatus.INTERRUPTED
        if _is_click_exception(exc):
            _say(_usage_line(exc))
            return ExitStatus.FAILURE
        _say(f"decaenv: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} — this is a decaenv "
             "bug: rerun with DECAENV_DEBUG=1 and report the traceback")
        if debug_enabled():
            traceback.print_exc()
        return ExitStatus.ERROR
    code = int(result) if isinstance(result, int) else ExitStatus.SUCCESS
    if code == ExitStatus.INTERRUPTED:  # typer turns Ctrl-C into a silent Exit(130)
        _say("decaenv: interrupted")
    return code

"""Console factory: rich is imported here, lazily, only when a command really prints something."""

from __future__ import annotations

import os
import sys

#: Environment variables that switch progress bars and spinners off (besides --no-progress and a non-TTY).
NO_PROGRESS_ENV = "DECAENV_NO_PROGRESS"


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def progress_enabled(state=None, stream=None) -> bool:
    """Whether to draw progress bars and spinners: only on a terminal, never with `--no-progress`, `-q`,
    `DECAENV_NO_PROGRESS=1`, `TERM=dumb` or `CI=true` (CI logs keep only the final lines).

    Args:
        state: the command's `CliState` (None: only the environment decides). stream: default stderr.
    """
    if state is not None and (not getattr(state, "progress", True) or getattr(state, "quiet", False)):
        return False
    if _env_true(NO_PROGRESS_ENV) or _env_true("CI") or os.environ.get("TERM") == "dumb":
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def make_console(*, quiet: bool = False, stderr: bool = False):
    """A rich Console honouring `-q` (suppresses everything but errors) and NO_COLOR/TTY detection.

    Plain lines are never hard-wrapped (`soft_wrap=True`: a long path stays on one line in CI logs and pipes);
    tables still lay themselves out to the terminal width.

    Returns:
        rich.console.Console
    """
    from rich.console import Console

    return Console(
        stderr=stderr, quiet=quiet, highlight=False, soft_wrap=True, file=sys.stderr if stderr else sys.stdout
    )


def print_json(data) -> None:
    """Write a JSON document to stdout (sorted keys off, UTF-8, trailing newline)."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()

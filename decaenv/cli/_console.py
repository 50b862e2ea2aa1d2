"""Console factory: rich is imported here, lazily, only when a command really prints something."""

from __future__ import annotations

import sys


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

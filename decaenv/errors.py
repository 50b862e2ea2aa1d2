"""The one exception hierarchy of decaenv.

Library code raises these; only the CLI edge (`decaenv.cli`) turns them into a one-line message and an
exit code. This module imports nothing from the rest of decaenv (and nothing heavy), so any module may
import it.

Exit codes (the foundation contract, also documented in the README):
    0  success
    1  problems found, or a failure the user can fix (bad input, missing file, hash mismatch, ...)
    2  internal error (a decaenv bug) or a check that could not run
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import os
from typing import Optional

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class DecaenvError(Exception):
    """A failure the user can act on.

    Args:
        message: what went wrong, naming the thing (a file, a flag, a URL) it went wrong with.
        hint: the fix, as an instruction ("run `decaenv fetch deca-model`").
        path: the file or folder concerned, when there is one.
    """

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, *, hint: Optional[str] = None, path: Optional[os.PathLike] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path

    def one_line(self) -> str:
        """The message and the hint on one line (newlines folded), for terminals and logs."""
        text = self.message if not self.hint else f"{self.message} — {self.hint}"
        return " ".join(text.split())


class UsageError(DecaenvError):
    """A flag, argument or combination of them that cannot work."""


class DataError(DecaenvError):
    """A data file (FLAME, checkpoint, topology, ...) that is missing, invalid or of the wrong kind."""


class UnsafeContentError(DataError):
    """Content refused for safety: a pickle global outside the allowlist, an archive member escaping its
    target folder, a symlink in an archive."""


class FetchError(DecaenvError):
    """A download or import that failed (network, server answer, credentials)."""


class IntegrityError(FetchError):
    """Content whose size, hash or format does not match what the manifest promises."""


class InputError(DecaenvError):
    """An input image, video or landmark file that cannot be used."""


class BuildError(DecaenvError):
    """Building or loading the compiled rasterizer failed."""


class InternalError(DecaenvError):
    """A decaenv bug or a check that could not run: exit code 2."""

    exit_code = EXIT_ERROR

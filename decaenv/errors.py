"""The one exception hierarchy of decaenv.

Library code raises these; only the CLI edge (`decaenv.cli`) turns them into a one-line message and an
exit code. This module imports nothing from the rest of decaenv but its type aliases (and nothing heavy),
so any module may import it.

Exit codes (the foundation contract, also documented in the README):
    0  success
    1  problems found, or a failure the user can fix (bad input, missing file, hash mismatch, ...)
    2  internal error (a decaenv bug) or a check that could not run
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import enum
import errno
import os
from typing import Optional

from decaenv._typing import StrPath

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

    def __init__(
        self,
        message: str,
        *,
        hint: Optional[str] = None,
        path: Optional[StrPath] = None,
        code: Optional[enum.Enum] = None,
    ):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path
        #: the classified failure (e.g. `decaenv.fetch.errors.FetchCode`), None when unclassified.
        self.code = code
        #: a refused payload that never reached a file (an HTML page), for the fetch quarantine.
        self.payload: Optional[bytes] = None
        #: where the fetch engine kept the refused payload.
        self.quarantined: Optional[str] = None

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
    """A download or import that failed (network, server answer, credentials).

    Attributes:
        http_status: the HTTP status of the answer that was refused, when there was one.
    """

    http_status: Optional[int] = None


class IntegrityError(FetchError):
    """Content whose size, hash or format does not match what the manifest promises."""


class InputError(DecaenvError):
    """An input image, video or landmark file that cannot be used."""


class BuildError(DecaenvError):
    """Building or loading the compiled rasterizer failed."""


class FileSystemError(DecaenvError):
    """An operating-system error on a file or folder (disk full, read-only, permission, name too long...).

    Attributes:
        errno: the OSError's errno (None when unknown).
    """

    def __init__(
        self,
        message: str,
        *,
        hint: Optional[str] = None,
        path: Optional[StrPath] = None,
        errno_: Optional[int] = None,
    ):
        super().__init__(message, hint=hint, path=path)
        self.errno = errno_


_OS_HINTS = {
    errno.ENOSPC: ("no space left on the device", "free some space (or pass another --data-dir/--out)"),
    getattr(errno, "EDQUOT", -1): ("disk quota exceeded", "free some space in your quota or use another folder"),
    errno.EFBIG: ("file too large for this filesystem or limit (ulimit -f)", "raise the limit or use another folder"),
    errno.EROFS: ("the filesystem is read-only", "use a writable folder (--data-dir / --out)"),
    errno.EACCES: ("permission denied", "check the folder's owner and mode (ls -ld), or use a folder you own"),
    errno.EPERM: ("operation not permitted", "check the folder's owner and mode (ls -ld), or use a folder you own"),
    errno.ENAMETOOLONG: ("the file name is too long", "use a shorter path"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.EISDIR: ("it is a folder", "give a file path"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) and retry"),
    errno.EIO: ("input/output error", "the disk or network filesystem failed: check it (dmesg) and retry"),
    errno.ELOOP: ("too many levels of symbolic links", "fix the symbolic link loop"),
    errno.EXDEV: ("cross-device link", "keep the folder on one filesystem"),
}


def os_error(exc: OSError, path: Optional[StrPath] = None, action: str = "use") -> FileSystemError:
    """A one-line `FileSystemError` for an OSError: what failed, on which path, why, and the fix.

    Args:
        exc: the OSError. path: the path to name when the error carries none. action: "write", "read", "use".
    """
    where = exc.filename if exc.filename is not None else path
    why, fix = _OS_HINTS.get(exc.errno or -2, (exc.strerror or str(exc), "check the path and retry"))
    name = errno.errorcode.get(exc.errno or -2, "")
    target = f" {os.fspath(where)}" if where is not None else ""
    return FileSystemError(
        f"cannot {action}{target}: {why}" + (f" ({name})" if name else ""), hint=fix, path=where, errno_=exc.errno
    )


class InternalError(DecaenvError):
    """A decaenv bug or a check that could not run: exit code 2."""

    exit_code = EXIT_ERROR

"""Progress reporting seam: the engine calls a `Progress`; the CLI plugs in rich bars, tests a recorder."""

from __future__ import annotations

from typing import Optional


class Progress:
    """Receives transfer progress for one file at a time (this base class ignores everything)."""

    def start(self, label: str, total: Optional[int], completed: int = 0) -> None:
        """A transfer begins (or restarts): `total` bytes expected (None: unknown), `completed` already there."""

    def advance(self, n: int) -> None:
        """`n` more bytes arrived."""

    def done(self) -> None:
        """The transfer finished (successfully or not)."""


class NullProgress(Progress):
    """No output (quiet mode, JSON mode, library use)."""

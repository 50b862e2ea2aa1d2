"""Global CLI options, parsed once by the root callback and handed to every command via `ctx.obj`."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from decaenv.paths import DataDir, resolve_data_dir


@dataclass
class CliState:
    """What the global options said.

    Attributes:
        data_dir_flag: value of `--data-dir`, or None.
        verbosity: -1 with `-q`, 0 by default, 1+ per `-v`.
        progress: False with `--no-progress` (see `decaenv.cli._console.progress_enabled` for the rest).
    """

    data_dir_flag: Optional[Path] = None
    verbosity: int = 0
    progress: bool = True
    _data_dir: Optional[DataDir] = field(default=None, init=False, repr=False)

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    @property
    def verbose(self) -> bool:
        return self.verbosity > 0

    def data_dir(self, *, must_exist: bool = False) -> DataDir:
        """The data dir (flag, env, ./data, default; see `decaenv.paths`), resolved on first use, then reused.

        Commands hand the returned `DataDir` (path and source) down; nothing below the CLI resolves it again.
        `must_exist` only checks the folder exists (read-only commands).
        """
        if self._data_dir is None:
            self._data_dir = resolve_data_dir(self.data_dir_flag)
        return self._data_dir.require_existing() if must_exist else self._data_dir


def state_of(ctx) -> CliState:
    """The `CliState` of a typer/click context (a default one when a command is invoked directly)."""
    root = ctx.find_root() if ctx is not None else None
    obj = getattr(root, "obj", None)
    return obj if isinstance(obj, CliState) else CliState()


def configure_logging(verbosity: int) -> None:
    """Route the `decaenv` logger to stderr at a level set by -q/-v/-vv."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logger = logging.getLogger("decaenv")
    logger.setLevel(level)
    if not any(h.get_name() == "decaenv" for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("decaenv: %(message)s"))
        handler.set_name("decaenv")
        logger.addHandler(handler)
    logger.propagate = False

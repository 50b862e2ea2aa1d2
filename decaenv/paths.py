"""Where decaenv keeps things: the data dir (DECA's `data/` layout), its home, cache and build dirs.

Data-dir resolution, first match wins:
    1. the `--data-dir` flag;
    2. the `DECAENV_DATA_DIR` environment variable;
    3. a DECA-style `./data` folder in the current directory (one that already holds a DECA data file,
       so running decaenv inside a DECA checkout just works);
    4. `$DECAENV_HOME/data` when `DECAENV_HOME` is set, else the platform's user data dir
       (e.g. `~/.local/share/decaenv/data` on Linux).

`DECAENV_HOME` (default: the platform's user data dir for decaenv) also roots the cache
(`$DECAENV_HOME/cache`, else the platform's user cache dir).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from decaenv.deca_layout import DATA_MARKERS
from decaenv.errors import UsageError

ENV_HOME = "DECAENV_HOME"
ENV_DATA_DIR = "DECAENV_DATA_DIR"

@dataclass(frozen=True)
class DataDir:
    """A resolved data dir and where the choice came from.

    Attributes:
        path: absolute path of the folder (it may not exist yet).
        source: one of "flag", "env", "cwd", "default".
    """

    path: Path
    source: str

    def describe(self) -> str:
        """Human-readable origin, e.g. "/x/data (from --data-dir)"."""
        origin = {
            "flag": "from --data-dir",
            "env": f"from ${ENV_DATA_DIR}",
            "cwd": "DECA-style ./data in the current directory",
            "default": "default location",
        }[self.source]
        return f"{self.path} ({origin})"


def home_dir() -> Path:
    """decaenv's own state folder: `$DECAENV_HOME`, else the platform's user data dir."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("decaenv", appauthor=False))


def cache_dir() -> Path:
    """Caches (doctor results, hashes, build verdicts): `$DECAENV_HOME/cache`, else the user cache dir."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve() / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir("decaenv", appauthor=False))


def build_dir() -> Path:
    """Root of ahead-of-time builds of the rasterizer extension (one sub-folder per environment key)."""
    return cache_dir() / "build"


def is_deca_data_dir(path: Path) -> bool:
    """True if `path` is a folder holding at least one DECA data file."""
    return path.is_dir() and any((path / name).exists() for name in DATA_MARKERS)


def resolve_data_dir(flag: Optional[os.PathLike] = None, *, must_exist: bool = False,
                     cwd: Optional[Path] = None) -> DataDir:
    """Resolve the data dir (see the module docstring for the order).

    Args:
        flag: value of `--data-dir`, if given.
        must_exist: raise `UsageError` when the resolved folder does not exist (read-only commands).
            Write commands pass False and create the folder themselves.
        cwd: the current directory (tests); defaults to `Path.cwd()`.

    Raises:
        UsageError: the folder does not exist although it must, or it is a file.
    """
    if flag is not None:
        chosen = DataDir(Path(flag).expanduser().resolve(), "flag")
    elif os.environ.get(ENV_DATA_DIR):
        chosen = DataDir(Path(os.environ[ENV_DATA_DIR]).expanduser().resolve(), "env")
    else:
        local = (cwd or Path.cwd()) / "data"
        if is_deca_data_dir(local):
            chosen = DataDir(local.resolve(), "cwd")
        else:
            chosen = DataDir(home_dir() / "data", "default")
    if chosen.path.exists() and not chosen.path.is_dir():
        raise UsageError(f"data dir {chosen.describe()} is a file, not a folder",
                         hint="pass a folder to --data-dir")
    if must_exist and not chosen.path.is_dir():
        raise UsageError(f"data dir {chosen.describe()} does not exist",
                         hint="pass an existing folder to --data-dir, or run `decaenv fetch` to create it")
    return chosen

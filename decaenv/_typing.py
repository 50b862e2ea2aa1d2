"""Type aliases shared across decaenv (imports nothing but `os` and `typing`)."""

from __future__ import annotations

import os
from typing import Union

#: A file or folder given as `str` or as a path object (`pathlib.Path`), as `open()` accepts it.
StrPath = Union[str, "os.PathLike[str]"]

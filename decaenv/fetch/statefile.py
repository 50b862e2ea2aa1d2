"""Read decaenv's JSON state files defensively: malformed content is treated as absent, with one warning.

State files (`lockfile.json`, `licenses.json`, the hash cache) are decaenv's own, but a crash of another tool,
a hand edit or a disk error can leave anything in them. Every reader takes `{section: {key: {...}}}` through
`read_section`: a file that is not JSON, not an object, or whose section or records have the wrong types
yields only its well-formed records, and the first problem seen per file is logged once as a warning.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict, Set

log = logging.getLogger("decaenv.fetch")
_WARNED: Set[str] = set()


def _warn(path: os.PathLike, why: str) -> None:
    key = os.fspath(path)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning("ignoring malformed %s (%s): it is treated as absent and rewritten on the next change", key, why)


def read_document(path: os.PathLike) -> dict:
    """The JSON object in `path` ({} when missing; {} and a warning when unreadable or not an object)."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        _warn(path, f"{type(exc).__name__}: {exc}")
        return {}
    if not isinstance(data, dict):
        _warn(path, f"holds a JSON {type(data).__name__}, not an object")
        return {}
    return data


def read_section(path: os.PathLike, section: str) -> Dict[str, dict]:
    """`document[section]` keeping only string keys whose records are objects (see the module docstring)."""
    data = read_document(path)
    records = data.get(section, {})
    if not isinstance(records, dict):
        _warn(path, f"its {section!r} is a {type(records).__name__}")
        return {}
    good = {k: v for k, v in records.items() if isinstance(k, str) and isinstance(v, dict)}
    if len(good) != len(records):
        _warn(path, f"{len(records) - len(good)} record(s) of {section!r} are not objects")
    return good

"""What decaenv keeps on disk, with sizes, and how to clean it (the library behind `decaenv cache`).

Kinds of item (`KINDS`):
    builds      compiled rasterizers, one folder per Python/torch/CUDA key   (cache dir / build)
    doctor      cached doctor results                                         (cache dir / doctor)
    hashes      sha256 cache of verified data files                           (cache dir / file-hashes.json)
    exec        shim launchers of `decaenv exec`                              (cache dir / exec)
    partials    unfinished downloads in the data dir                          (data dir, `.*.part`)
    quarantine  payloads fetch refused, kept as evidence                      (data dir / .decaenv / quarantine)
Installed data files, the lockfile and licence acceptances are never listed as removable and never removed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from decaenv import paths

KINDS = ("builds", "doctor", "hashes", "exec", "partials", "quarantine")
_CACHE_ITEMS = {"builds": "build", "doctor": "doctor", "hashes": "file-hashes.json", "exec": "exec"}


@dataclass
class Item:
    """One kind of thing decaenv keeps: where, how many files, how many bytes.

    Attributes:
        kind: one of `KINDS`. path: its folder or file. files: the files it holds (sorted).
        in_use: partials another process may still be writing (never removed).
        size: bytes of `files`, counted when the item was made (so it stays right after removal).
    """

    kind: str
    path: Path
    files: List[Path] = field(default_factory=list)
    in_use: List[Path] = field(default_factory=list)
    size: int = -1

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = sum(_size(p) for p in self.files)

    def to_dict(self) -> Dict[str, object]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "files": len(self.files),
            "bytes": self.size,
            "in_use": [str(p) for p in self.in_use],
        }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _files(path: Path) -> List[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []


def inventory(data_dir: Optional[Path]) -> List[Item]:
    """Every kind of item, in `KINDS` order (data-dir kinds only when a data dir is given)."""
    from decaenv.fetch import leftovers

    cache = paths.cache_dir()
    items = [Item(kind, cache / name, _files(cache / name)) for kind, name in _CACHE_ITEMS.items()]
    if data_dir is not None:
        partials = leftovers.partial_files(data_dir)
        busy = [p for p in partials if leftovers.partial_in_use(p)]
        items.append(Item("partials", Path(data_dir), partials, busy))
        items.append(Item("quarantine", leftovers.quarantine_dir(data_dir), leftovers.quarantine_files(data_dir)))
    return items


def data_dir_size(data_dir: Path) -> int:
    """Bytes of everything in the data dir (installed files, state, leftovers)."""
    return sum(_size(p) for p in _files(data_dir))


def clean(data_dir: Optional[Path], kinds: Sequence[str], *, dry_run: bool = False) -> List[Item]:
    """Remove the items of `kinds` (see `KINDS`). Returns what was removed (or would be, with `dry_run`).

    Raises:
        ValueError: an unknown kind (a decaenv bug: the CLI only passes known ones).
    """
    from decaenv.fetch import leftovers

    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown cache kinds {unknown}")
    removed = []
    for item in inventory(data_dir):
        if item.kind not in kinds or not item.files:
            continue
        if item.kind == "partials":
            sizes = {p: _size(p) for p in item.files}
            gone, busy = leftovers.remove_partials(item.path, dry_run=dry_run)
            removed.append(Item("partials", item.path, gone, busy, size=sum(sizes[p] for p in gone if p in sizes)))
        elif item.kind == "quarantine":
            if data_dir is not None:  # `inventory` lists a quarantine only inside a data dir
                leftovers.clear_quarantine(data_dir, dry_run=dry_run)
            removed.append(item)
        else:
            if not dry_run:
                _remove(item.path)
            removed.append(item)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

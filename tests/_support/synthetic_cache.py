"""Synthetic DECA data dirs kept between test runs, keyed by everything that decides their bytes.

Building one (a 214 MB checkpoint, FLAME, the UV maps) takes ~10 s and writes ~330 MB; every pytest session (and
every xdist worker) used to build its own. Now a data dir (and the synthetic FAN weights) is built once into
`$DECAENV_TEST_SYNTHETIC_CACHE` (default `<user cache>/decaenv-tests/synthetic`) under a key made of the
generator's source (decaenv/synthetic, the layout and pickle modules it uses), torch's and numpy's versions, the
seed, the options and the public topology files' bytes; it is reused while that key stands. Set the variable to
`0` to build into the session's temporary folder as before.

Tests must not modify these folders (copy files out first). A record of every file's size and mtime is kept
beside each folder; a folder that no longer matches it (a test wrote into it) is rebuilt at the next session
start, never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

CACHE_ENV = "DECAENV_TEST_SYNTHETIC_CACHE"
KEEP = 8  # folders kept (the newest by use); older keys are removed when a new one is built
REPO = Path(__file__).resolve().parents[2]
#: What decides a synthetic data dir's bytes, besides the arguments and the library versions.
SOURCES = ("decaenv/synthetic", "decaenv/uvlayout.py", "decaenv/deca_layout.py", "decaenv/loaders/legacy_pickle.py")


def cache_root() -> Optional[Path]:
    """The cache folder, or None when `$DECAENV_TEST_SYNTHETIC_CACHE` is `0`."""
    value = os.environ.get(CACHE_ENV)
    if value == "0":
        return None
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("decaenv-tests", appauthor=False)) / "synthetic"


def cache_key(*parts: object, public_dir: Optional[Path] = None) -> str:
    """A digest of the generator's sources, torch/numpy versions, `parts` and the public files' bytes."""
    import numpy
    import torch

    from decaenv.deca_layout import PUBLIC_FILES

    digest = hashlib.sha256("|".join(map(str, (torch.__version__, numpy.__version__, *parts))).encode())
    for source in SOURCES:
        base = REPO / source
        for path in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
            digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    for name in PUBLIC_FILES if public_dir is not None else ():
        digest.update(name.encode() + b"\0" + (Path(public_dir) / name).read_bytes())
    return digest.hexdigest()[:20]


def _listing(folder: Path) -> Dict[str, List[int]]:
    """{relative path: [size, mtime_ns]} of every file under `folder`."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            st = path.stat()
            out[path.relative_to(folder).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def _intact(folder: Path, record: Path) -> bool:
    try:
        return folder.is_dir() and json.loads(record.read_text()) == _listing(folder)
    except (OSError, ValueError):
        return False


def _prune(root: Path, keep: str) -> None:
    """Remove all but the newest `KEEP` cached folders, and builds a killed session left (over an hour old)."""
    records = sorted(root.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    stale = [r.with_suffix("") for r in records[KEEP:] if r.stem != keep]
    stale += [p for p in root.glob(".*.building") if p.is_dir() and time.time() - p.stat().st_mtime > 3600]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
        folder.with_suffix(".json").unlink(missing_ok=True)


def cached_build(key: str, build: Callable[[Path], object]) -> Path:
    """The cached folder for `key` (from `cache_key`), made by `build(folder)` first if it is missing or was
    changed; callers check `cache_root()` is not None."""
    from _support.io_budget import cache_build  # here: pytest loads io_budget as a plugin, asserts rewritten
    from decaenv._process import ProcessLock

    root = cache_root()
    assert root is not None, "caching is off"
    folder, record = root / key, root / f"{key}.json"
    with ProcessLock(root / f"{key}.lock", purpose="building synthetic files for the tests"):
        if not _intact(folder, record):
            _prune(root, keep=key)
            shutil.rmtree(folder, ignore_errors=True)
            building = root / f".{key}.{os.getpid()}.building"
            with cache_build():
                build(building)
            listing = _listing(building)
            os.replace(building, folder)
            record.write_text(json.dumps(listing))
        os.utime(record)  # most recently used: kept by _prune
    return folder


def synthetic_data_dir(fallback: Path, *, seed: int, public_dir: Optional[Path], with_optimizer: bool) -> Path:
    """A complete synthetic data dir: the cached one for these arguments (built first if needed), or a fresh one
    in `fallback` when caching is off."""
    from decaenv.synthetic import make_assets

    def build(folder: Path) -> None:
        make_assets(folder, seed=seed, public_dir=public_dir, with_optimizer=with_optimizer)

    if cache_root() is None:
        build(fallback)
        return fallback
    return cached_build(cache_key("data-dir", seed, with_optimizer, public_dir=public_dir), build)

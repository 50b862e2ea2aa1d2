"""SHA-256 of files and streams, and a hash cache keyed by file identity so re-verifying is cheap.

The cache (`$DECAENV_HOME/cache/file-hashes.json`, see `decaenv.paths.cache_dir`) maps a file's real
path to the (size, mtime_ns, inode, device) it had when hashed, its sha256 and which content
validators it passed. Any change of those stat fields invalidates the record (DVC's state-DB idea).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Dict, Optional, Tuple

CHUNK = 4 << 20  # 4 MiB reads: at the plateau of hashlib's throughput
_CACHE_NAME = "file-hashes.json"
_MAX_RECORDS = 2000


def new_hasher():
    """A fresh sha256 object (FIPS hosts: not used for security decisions beyond integrity)."""
    return hashlib.sha256()


def file_sha256(path: os.PathLike, *, hasher=None, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, streamed through one reusable buffer (optionally into `hasher`)."""
    digest = hasher or new_hasher()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
    return digest.hexdigest()


def seed_hasher(path: os.PathLike, hasher, length: int) -> None:
    """Feed the first `length` bytes of `path` into `hasher` (resume: pre-seed with bytes on disk)."""
    remaining = length
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while remaining > 0:
            n = fh.readinto(view[: min(CHUNK, remaining)])
            if not n:
                raise OSError(f"{path} is shorter than {length} bytes")
            hasher.update(view[:n])
            remaining -= n


StatKey = Tuple[int, int, int, int]


def stat_key(st: os.stat_result) -> StatKey:
    """(size, mtime_ns, inode, device): the identity a cached hash is valid for."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


class HashCache:
    """A small JSON store of {realpath: {stat, sha256, valid}} shared by fetch, verify and the doctor.

    Writes are atomic (temp file + rename) and merge with what is on disk, so concurrent processes
    lose at most each other's newest record; unreadable or unwritable caches are simply ignored.
    """

    _lock = threading.Lock()

    def __init__(self, path: Optional[Path] = None):
        if path is None:
            from decaenv.paths import cache_dir

            path = cache_dir() / _CACHE_NAME
        self.path = Path(path)

    def _read(self) -> Dict[str, dict]:
        from decaenv.fetch.statefile import read_section

        return read_section(self.path, "files")

    def lookup(self, path: os.PathLike, st: os.stat_result) -> Optional[dict]:
        """The record for `path` if its stat identity is unchanged (and well-formed), else None."""
        record = self._read().get(os.path.realpath(path))
        if not record or not isinstance(record.get("stat"), list) or tuple(record["stat"]) != stat_key(st):
            return None
        if not isinstance(record.get("sha256"), str) or not isinstance(record.get("valid", {}), dict):
            return None
        return record

    def store(
        self, path: os.PathLike, st: os.stat_result, sha256: str, valid: Optional[Tuple[str, str]] = None
    ) -> None:
        """Remember `sha256` for `path` at stat `st`; `valid` = (validator key, summary) it passed."""
        key = os.path.realpath(path)
        with self._lock:
            files = self._read()
            old = files.get(key) or {}
            same = (
                isinstance(old.get("stat"), list) and tuple(old["stat"]) == stat_key(st) and old.get("sha256") == sha256
            )
            passed = dict(old.get("valid", {})) if same and isinstance(old.get("valid"), dict) else {}
            if valid:
                passed[valid[0]] = valid[1]
            files.pop(key, None)
            files[key] = {"stat": list(stat_key(st)), "sha256": sha256, "valid": passed}
            if len(files) > _MAX_RECORDS:
                for stale in list(files)[: len(files) - _MAX_RECORDS]:
                    del files[stale]
            self._write(files)

    def _write(self, files: Dict[str, dict]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"version": 1, "files": files}))
            os.replace(tmp, self.path)
        except OSError:
            try:
                tmp.unlink()
            except OSError:
                pass


def cached_sha256(path: os.PathLike, cache: Optional[HashCache], *, rehash: bool = False) -> Tuple[str, bool]:
    """sha256 of `path`, from the cache when its identity is unchanged.

    Returns:
        (hex digest, True if it came from the cache).
    """
    st = os.stat(path)
    if cache is not None and not rehash:
        record = cache.lookup(path, st)
        if record and record.get("sha256"):
            return record["sha256"], True
    digest = file_sha256(path)
    if cache is not None and stat_key(os.stat(path)) == stat_key(st):
        cache.store(path, st, digest)
    return digest, False

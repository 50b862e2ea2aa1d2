"""Verify one manifest entry in a data dir: the status object shared by `decaenv fetch` and the doctor.

    from decaenv.fetch import load_manifest, verify_entry
    status = verify_entry(load_manifest().get("deca-model"), data_dir)   # level="hash" by default
    status.status   # "verified" | "present" | "missing" | "size-mismatch" | "hash-mismatch"
                    # | "hash-unknown" | "invalid"

Hashes come from the hash cache when the file's (size, mtime, inode, device) is unchanged, so calling
this repeatedly is cheap; `rehash=True` forces reading the file again.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional, Tuple, Union

from decaenv.errors import DecaenvError
from decaenv.fetch.hashes import HashCache, cached_sha256, stat_key
from decaenv.fetch.manifest import Entry, Validator
from decaenv.fetch.records import LockFile

STATUSES = ("verified", "present", "missing", "size-mismatch", "hash-mismatch", "hash-unknown", "invalid")
LEVELS = ("stat", "hash", "content")


@dataclass(frozen=True)
class FileStatus:
    """Where one entry stands in a data dir.

    Attributes:
        id, dest, path: the entry and its absolute destination.
        status: one of `STATUSES`:
            verified: size and sha256 match the manifest, or the first-use record (see `hash_source`);
            present: exists, not hashed (level "stat");
            missing: no file at the destination;
            size-mismatch / hash-mismatch: exists but differs from what is expected;
            hash-unknown: exists, no hash to compare with (never fetched by decaenv: run `decaenv fetch`);
            invalid: the hash matches or is unknown, but the content check failed (level "content").
        size, expected_size, sha256, expected_sha256: what was found / what is expected.
        hash_source: "manifest", "first-use" (lock file) or None.
        content: the validator's summary when it ran and passed.
        detail: one line explaining the status (and the fix when it is not verified).
        cached: the hash came from the hash cache.
    """

    id: str
    dest: str
    path: str
    status: str
    size: Optional[int] = None
    expected_size: Optional[int] = None
    sha256: Optional[str] = None
    expected_sha256: Optional[str] = None
    hash_source: Optional[str] = None
    content: Optional[str] = None
    detail: str = ""
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "verified"

    @property
    def usable(self) -> bool:
        """Good enough to run with: verified, or present with an unknown hash and no failed check."""
        return self.status in ("verified", "hash-unknown", "present")

    def to_json(self) -> dict:
        return asdict(self)


def expected_hash(
    entry: Entry, data_dir: os.PathLike, lockfile: Optional[LockFile] = None
) -> Tuple[Optional[str], Optional[int], Optional[str]]:
    """(sha256, size, source) the file must match: the manifest's, else the first-use record's."""
    if entry.sha256:
        return entry.sha256, entry.size, "manifest"
    record = (lockfile or LockFile(data_dir)).get(entry.id)
    if record:
        return record["sha256"], record.get("size"), "first-use"
    return None, entry.size, None


def verify_entry(
    entry: Entry,
    data_dir: os.PathLike,
    *,
    level: str = "hash",
    rehash: bool = False,
    cache: Optional[HashCache] = None,
    lockfile: Optional[LockFile] = None,
    use_cache: bool = True,
) -> FileStatus:
    """Check one entry's file in `data_dir` (see the module docstring).

    Args:
        entry: the manifest entry.
        data_dir: the data folder.
        level: "stat" (existence and size), "hash" (+ sha256) or "content" (+ the content validator).
        rehash: ignore cached hashes and validator results (the cache is refreshed).
        cache: hash cache to use (default: the user's, under `decaenv.paths.cache_dir()`).
        lockfile: the data dir's lock file (default: read from `data_dir`).
        use_cache: False disables the hash cache entirely.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    path = entry.path(data_dir)
    want_sha, want_size, source = expected_hash(entry, data_dir, lockfile)
    # what is known so far; every return sets `status` and `detail`
    base = FileStatus(
        id=entry.id,
        dest=entry.dest,
        path=str(path),
        status="",
        expected_size=want_size,
        expected_sha256=want_sha,
        hash_source=source,
    )
    try:
        st = path.stat()
    except FileNotFoundError:
        return replace(base, status="missing", detail=f"{entry.dest} is missing: run `decaenv fetch {entry.id}`")
    if not path.is_file():
        return replace(base, status="invalid", detail=f"{path} is not a regular file")
    base = replace(base, size=st.st_size)
    if want_size is not None and st.st_size != want_size:
        return replace(
            base,
            status="size-mismatch",
            detail=f"{st.st_size} bytes, expected {want_size}: run `decaenv fetch --force {entry.id}`",
        )
    if level == "stat":
        return replace(base, status="present", detail="not hashed")
    cache = (cache or HashCache()) if use_cache else None
    digest, cached = cached_sha256(path, cache, rehash=rehash)
    base = replace(base, sha256=digest, cached=cached)
    wrong_prefix = entry.prefix_mismatch(digest)
    if wrong_prefix:
        return replace(base, status="hash-mismatch", detail=f"{wrong_prefix}: run `decaenv fetch --force {entry.id}`")
    if want_sha is not None and digest != want_sha:
        origin = "the manifest" if source == "manifest" else "the hash recorded when it was first fetched"
        return replace(
            base,
            status="hash-mismatch",
            detail=f"sha256 differs from {origin}: run `decaenv fetch --force {entry.id}`",
        )
    status = "verified" if want_sha else "hash-unknown"
    detail = "" if want_sha else f"no known hash: run `decaenv fetch {entry.id}` to check and record it"
    if level == "content" and entry.validator is not None:
        summary = _content(entry.validator, path, st, digest, cache, rehash)
        if isinstance(summary, DecaenvError):
            return replace(base, status="invalid", detail=summary.one_line())
        base = replace(base, content=summary)
    return replace(base, status=status, detail=detail)


def _content(
    validator: Validator, path: Path, st: os.stat_result, digest: str, cache: Optional[HashCache], rehash: bool
) -> Union[str, DecaenvError]:
    """The validator's summary (cached per file identity), or the error it raised."""
    from decaenv.fetch.validators import validate, validator_key

    key = validator_key(validator)
    if cache is not None and not rehash:
        record = cache.lookup(path, st)
        if record and record.get("sha256") == digest and key in record.get("valid", {}):
            return record["valid"][key]
    try:
        summary = validate(path, validator)
    except DecaenvError as exc:
        return exc
    if cache is not None and stat_key(os.stat(path)) == stat_key(st):
        cache.store(path, st, digest, valid=(key, summary))
    return summary

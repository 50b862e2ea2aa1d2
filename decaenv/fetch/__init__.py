"""Manifest-driven, verified, resumable fetching of DECA's data files (`decaenv fetch`).

Public API (imported lazily: `import decaenv.fetch` loads neither requests nor rich nor numpy):

    load_manifest(path=None) -> Manifest            manifests/deca.toml (or $DECAENV_MANIFEST)
    verify_entry(entry, data_dir, level=...) -> FileStatus
    verify(data_dir, ids=(), level="content", rehash=True) -> [FileStatus]
    fetch(data_dir, ids=(), options=None) -> [FileResult]
    import_files(data_dir, paths, options=None) -> [FileResult]

Module map (pooch's split): manifest, hashes, status (`verify_entry`, shared with the doctor),
sniff/structure/validators (content checks), http + stream (transfer engine), downloaders (by source
kind), processors (archives, post-install), store/locks/records (the data dir), credentials, engine
(orchestration), importer (`--from`), command + render (the CLI's logic and output), errors.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, List, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from decaenv.fetch.engine import FetchOptions, FileResult
    from decaenv.fetch.manifest import Manifest
    from decaenv.fetch.status import FileStatus

__all__ = ["load_manifest", "verify_entry", "verify", "fetch", "import_files", "FileStatus", "FetchOptions",
           "FileResult", "STATUSES"]


def __getattr__(name: str):
    if name in ("load_manifest", "Manifest", "Entry"):
        from decaenv.fetch import manifest

        return getattr(manifest, name)
    if name in ("verify_entry", "FileStatus", "STATUSES"):
        from decaenv.fetch import status as _status

        return getattr(_status, name)
    if name in ("FetchOptions", "FileResult"):
        from decaenv.fetch import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'decaenv.fetch' has no attribute {name!r}")


def verify(data_dir: os.PathLike, ids: Sequence[str] = (), *, level: str = "content", rehash: bool = True,
           everything: bool = True, manifest: Optional["Manifest"] = None) -> List["FileStatus"]:
    """Status of each entry (all of them by default) in `data_dir`; see `verify_entry`."""
    from decaenv.fetch.manifest import load_manifest
    from decaenv.fetch.status import verify_entry

    manifest = manifest or load_manifest()
    entries = manifest.select(ids, everything=everything and not ids)
    return [verify_entry(e, data_dir, level=level, rehash=rehash) for e in entries]


def fetch(data_dir: os.PathLike, ids: Sequence[str] = (), *, options: Optional["FetchOptions"] = None,
          everything: bool = False, manifest: Optional["Manifest"] = None) -> List["FileResult"]:
    """Fetch the entries `ids` (default: what reconstruction needs) into `data_dir`."""
    from decaenv.fetch.engine import fetch_entries
    from decaenv.fetch.manifest import load_manifest

    manifest = manifest or load_manifest()
    return fetch_entries(manifest, data_dir, manifest.select(ids, everything=everything), options)


def import_files(data_dir: os.PathLike, paths: Sequence[os.PathLike], *, options: Optional["FetchOptions"] = None,
                 manifest: Optional["Manifest"] = None) -> List["FileResult"]:
    """Import files/archives/folders the user already has (`decaenv fetch --from`)."""
    from decaenv.fetch.engine import Fetcher
    from decaenv.fetch.importer import import_paths
    from decaenv.fetch.manifest import load_manifest

    manifest = manifest or load_manifest()
    return import_paths(Fetcher(manifest, data_dir, options), manifest.entries, paths)

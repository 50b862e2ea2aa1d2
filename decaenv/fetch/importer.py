"""`decaenv fetch --from PATH...`: import files and archives the user already has.

A path is recognised by name AND content: its (normalised) name must be an entry's file name, alias
or a source's archive name — or, for an archive under any name, it must hold an entry's member — and
its content must then pass the same checks as a download (sniffed kind, size, sha256 or first-use
record, content validator). Inside a folder, a symbolic link that leads out of it is refused (its
target is never copied). Archives are checked for escaping members and only the needed members are
extracted. Folders are searched (three levels deep) for recognised files. The user's own files are
never modified or moved.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from decaenv.errors import DecaenvError, IntegrityError, os_error
from decaenv.fetch.engine import Fetcher, FileResult
from decaenv.fetch.errors import classify_html, fetch_error
from decaenv.fetch.hashes import CHUNK, new_hasher
from decaenv.fetch.locks import file_lock
from decaenv.fetch.manifest import Entry
from decaenv.fetch.processors import Archive, member_limit
from decaenv.fetch.sniff import describe_kind, read_head, sniff

_COPY_SUFFIX = re.compile(r"\s?\(\d+\)(?=\.[^.]+$)|\s?\(\d+\)$")
ARCHIVE_KINDS = ("zip", "tar", "gzip")
MAX_DEPTH = 3


def normalise_name(name: str) -> str:
    """A browser's duplicate-download name back to the original: 'deca_model (1).tar' -> 'deca_model.tar'."""
    return _COPY_SUFFIX.sub("", name)


def _walk(folder: Path) -> List[Path]:
    found: List[Path] = []
    for root, dirs, files in os.walk(folder):
        depth = len(Path(root).relative_to(folder).parts)
        dirs[:] = [d for d in dirs if not d.startswith(".") and depth < MAX_DEPTH]
        found.extend(Path(root) / f for f in files if not f.startswith("."))
    return sorted(found)


def _escapes(path: Path, root: Path) -> bool:
    """True when `path` (found under `root`) resolves to a file outside `root` (a symbolic link out)."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, base]) != base


class Importer:
    """Import local files into the data dir through a `Fetcher` (same checks and install path)."""

    def __init__(self, fetcher: Fetcher, entries: Sequence[Entry]):
        self.fetcher = fetcher
        self.entries = list(entries)
        self.by_name: Dict[str, Entry] = {}
        self.by_archive: Dict[str, List[Entry]] = {}
        for entry in self.entries:
            for name in (entry.name,) + entry.aliases:
                self.by_name[name] = entry
            for source in entry.sources:
                if source.archive:
                    self.by_archive.setdefault(source.archive, [])
                    if entry not in self.by_archive[source.archive]:
                        self.by_archive[source.archive].append(entry)

    def run(self, paths: Sequence[os.PathLike]) -> List[FileResult]:
        """Import every recognised file in `paths` (a path that is not recognised is a failure)."""
        self.fetcher.store.ensure(create_parents=self.fetcher.options.create_parents)
        results: List[FileResult] = []
        for raw in paths:
            path = Path(raw).expanduser()
            try:
                exists = path.exists()
            except OSError as exc:  # a name too long, a loop of links...
                results.append(self._failed(path, os_error(exc, path, "read")))
                continue
            if not exists:
                results.append(
                    self._failed(
                        path,
                        fetch_error("not-recognised", f"{path} does not exist", hint="check the path given to --from"),
                    )
                )
                continue
            if path.is_dir():
                found = [p for p in _walk(path) if self._recognised(p)]
                outside = [p for p in found if _escapes(p, path)]
                for link in outside:
                    results.append(
                        self._failed(
                            link,
                            fetch_error(
                                "symlink-outside",
                                f"refused {link}: it is a symbolic link to {os.path.realpath(link)}, outside {path}",
                                hint=f"copy the file into {path} or name it directly with --from",
                            ),
                        )
                    )
                found = [p for p in found if p not in outside]
                if not found and not outside:
                    results.append(
                        self._failed(
                            path,
                            fetch_error("not-recognised", f"{path} holds no file decaenv knows", hint=self._known()),
                        )
                    )
                for item in found:
                    results.extend(self.import_path(item))
            else:
                results.extend(self.import_path(path))
        return results

    def _known(self) -> str:
        names = sorted(set(self.by_name) | set(self.by_archive))
        return "expected one of: " + ", ".join(names)

    def _recognised(self, path: Path) -> bool:
        name = normalise_name(path.name)
        return name in self.by_name or name in self.by_archive

    def _failed(self, path: Path, exc: DecaenvError, entry: Optional[Entry] = None) -> FileResult:
        placeholder = entry or Entry(id="?", dest=path.name, license=self.entries[0].license, sources=())
        return FileResult(placeholder, "failed", source=str(path), error=exc)

    def import_path(self, path: Path) -> List[FileResult]:
        """Import one file: a data file by name, or an archive holding data files."""
        name = normalise_name(path.name)
        entry = self.by_name.get(name)
        try:
            if entry is not None:
                return [self.import_file(entry, path)]
            kind = sniff(read_head(path))
            if name in self.by_archive or kind in ARCHIVE_KINDS:
                return self.import_archive(path, self.by_archive.get(name) or self.entries)
            raise fetch_error(
                "not-recognised", f"{path.name} is not a file decaenv knows ({describe_kind(kind)})", hint=self._known()
            )
        except DecaenvError as exc:
            return [self._failed(path, exc, entry)]
        except OSError as exc:  # unreadable source, full or read-only data dir
            return [self._failed(path, os_error(exc, path, "import"), entry)]

    def _refuse_kind(self, entry: Entry, path: Path) -> None:
        head = read_head(path)
        kind = sniff(head)
        if kind == "html":
            from_drive = any(s.kind == "gdrive" for s in entry.sources)
            form = any(s.kind == "form-post" for s in entry.sources)
            exc = classify_html(
                read_head(path, 1 << 20).decode("utf-8", "replace"),
                source_kind="import-gdrive" if from_drive else ("form-post" if form else "import"),
                what=path.name,
                manual=entry.manual_text(),
            )
            exc.message = f"refused {path}: " + exc.message
            raise exc
        if kind in ("lfs-pointer", "empty"):
            raise fetch_error(
                "invalid-content",
                f"refused {path}: it is {describe_kind(kind)}",
                hint=entry.manual_text(),
                cls=IntegrityError,
            )

    def import_file(self, entry: Entry, path: Path) -> FileResult:
        """Copy one file into a staging file beside its destination (hashing it), verify, install."""
        self._refuse_kind(entry, path)
        with file_lock(self.fetcher.store.run_dir, entry.id, on_wait=self.fetcher.options.on_event):
            return self._import_file_locked(entry, path)

    def _import_file_locked(self, entry: Entry, path: Path) -> FileResult:
        fetcher = self.fetcher
        dest = entry.path(fetcher.store.root)
        if dest.exists() and os.path.samefile(dest, path):
            status = fetcher.status(entry)
            if status.ok:
                return FileResult(entry, "present", status, source=str(path))
            if status.status == "hash-unknown":
                adopted = fetcher._adopt(entry, status)
                if adopted is not None:
                    return adopted
            raise fetch_error(
                "invalid-content",
                f"{path} is already the destination and is {status.status}",
                hint=status.detail or entry.manual_text(),
                cls=IntegrityError,
            )
        fetcher.store.preflight(path.stat().st_size, entry.dest)
        staging = fetcher.store.new_staging(dest, source=f"import:{path}")
        try:
            digest, size = _copy_hashing(path, staging.path)
        except BaseException:
            staging.discard()
            raise
        result = FileResult(entry, "imported", source=str(path), bytes=size)
        existing = fetcher.status(entry)
        if existing.ok and existing.sha256 == digest and not fetcher.options.force:
            staging.discard()
            return FileResult(entry, "present", existing, source=str(path), notes=["identical file already installed"])
        fetcher.install(entry, staging, digest, size, result, origin=f"imported from {path}")
        return result

    def import_archive(self, path: Path, candidates: Sequence[Entry]) -> List[FileResult]:
        """Extract the members of `path` that are entries (all checks of `Archive`), verify, install."""
        fetcher = self.fetcher
        html_kind = "form-post" if any(s.kind == "form-post" for e in candidates for s in e.sources) else "import"
        results = []
        with Archive(path, html_kind=html_kind) as archive:
            archive.check_safe()
            wanted: List[Tuple[Entry, str]] = []
            for entry in candidates:
                members = [s.member for s in entry.sources if s.member] + [entry.name, *entry.aliases]
                found = next((m for m in (archive.find(x) for x in dict.fromkeys(members)) if m), None)
                if found:
                    wanted.append((entry, found))
            if not wanted:
                raise fetch_error(
                    "member-missing",
                    f"{path.name} holds none of the files decaenv needs",
                    hint="expected e.g. " + ", ".join(e.name for e in candidates[:4]),
                    cls=IntegrityError,
                )
            for entry, member in wanted:
                try:
                    with file_lock(fetcher.store.run_dir, entry.id, on_wait=fetcher.options.on_event):
                        results.append(self._import_member(archive, path, entry, member))
                except DecaenvError as exc:
                    results.append(self._failed(path, exc, entry))
                except OSError as exc:
                    results.append(self._failed(path, os_error(exc, entry.path(fetcher.store.root), "import"), entry))
        return results

    def _import_member(self, archive: Archive, path: Path, entry: Entry, member: str) -> FileResult:
        fetcher = self.fetcher
        dest = entry.path(fetcher.store.root)
        fetcher.store.preflight(archive.check_member_size(member, member_limit(entry)), entry.dest)
        staging = fetcher.store.new_staging(dest, source=f"import:{path}:{member}")
        try:
            digest, size = archive.extract(member, staging.path, limit=member_limit(entry))
        except BaseException:
            staging.discard()
            raise
        existing = fetcher.status(entry)
        if existing.ok and existing.sha256 == digest and not fetcher.options.force:
            staging.discard()
            return FileResult(
                entry, "present", existing, source=f"{path}:{member}", notes=["identical file already installed"]
            )
        result = FileResult(
            entry, "imported", source=f"{path}:{member}", bytes=size, notes=[f"extracted {member} from {path.name}"]
        )
        fetcher.install(entry, staging, digest, size, result, origin=f"imported from {path}:{member}")
        return result


def _copy_hashing(src: Path, dst: Path) -> Tuple[str, int]:
    """Copy `src` to `dst` in one pass, hashing the bytes. Returns (sha256, size)."""
    hasher, size = new_hasher(), 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(src, "rb", buffering=0) as fin, open(dst, "wb") as fout:
        while True:
            n = fin.readinto(buffer)
            if not n:
                break
            hasher.update(view[:n])
            fout.write(view[:n])
            size += n
    return hasher.hexdigest(), size


def import_paths(fetcher: Fetcher, entries: Sequence[Entry], paths: Sequence[os.PathLike]) -> List[FileResult]:
    """Import `paths` into the fetcher's data dir, recognising files against `entries`."""
    return Importer(fetcher, entries).run(paths)

"""Processors: safe extraction of one member from a zip/tar archive, and post-install steps.

Extraction refuses the whole archive when any member could escape the target (absolute paths, `..`
components, drive letters, symlinks, hard links, devices): a well-formed FLAME or DECA archive never
has one, so such an archive is hostile or broken. Only the members the manifest asks for are read,
streamed through sha256 into a staging file beside the destination.
"""

from __future__ import annotations

import logging
import os
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Dict, List, Optional, Tuple, Union

from decaenv.errors import UnsafeContentError
from decaenv.fetch.errors import classify_html, fetch_error
from decaenv.fetch.hashes import new_hasher
from decaenv.fetch.sniff import describe_kind, read_head, sniff

log = logging.getLogger("decaenv.fetch")

_JUNK = ("__MACOSX/",)


def _unsafe(name: str) -> Optional[str]:
    """Why an archive member name is unsafe, or None."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(norm).parts:
        return "climbs out of the target folder (..)"
    return None


class Archive:
    """A zip or tar archive opened for inspection and single-member extraction."""

    _archive: Union[zipfile.ZipFile, tarfile.TarFile]

    def __init__(self, path: os.PathLike, what: str = "", html_kind: str = "form-post"):
        self.path = Path(path)
        self.what = what or self.path.name
        kind = sniff(read_head(self.path, 1024))
        if kind == "html":
            text = read_head(self.path, 1 << 20).decode("utf-8", "replace")
            raise classify_html(text, source_kind=html_kind, what=self.what)
        try:
            if kind == "zip" or zipfile.is_zipfile(self.path):
                self.kind, self._archive = "zip", zipfile.ZipFile(self.path)
            else:
                self.kind, self._archive = "tar", tarfile.open(self.path, "r:*")
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
            raise fetch_error(
                "invalid-content",
                f"{self.what} is {describe_kind(kind)}, not a readable zip/tar archive ({exc})",
                hint="the download is truncated or not an archive: get it again",
            ) from None

    def close(self) -> None:
        self._archive.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def names(self) -> List[str]:
        if isinstance(self._archive, zipfile.ZipFile):
            return self._archive.namelist()
        return self._archive.getnames()

    def check_safe(self) -> None:
        """Raise `UnsafeContentError` (code "unsafe-archive") if any member could escape the target."""
        problems: List[str] = []
        if isinstance(self._archive, zipfile.ZipFile):
            for info in self._archive.infolist():
                why = _unsafe(info.filename)
                mode = info.external_attr >> 16
                if why is None and stat.S_ISLNK(mode):
                    why = "is a symbolic link"
                if why:
                    problems.append(f"{info.filename!r} {why}")
        else:
            for member in self._archive.getmembers():
                why = _unsafe(member.name)
                if why is None and (member.issym() or member.islnk()):
                    why = "is a link"
                elif why is None and not (member.isfile() or member.isdir()):
                    why = "is a device or special file"
                if why:
                    problems.append(f"{member.name!r} {why}")
        if problems:
            raise fetch_error(
                "unsafe-archive",
                f"{self.what} refused: member {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                hint="nothing was extracted; get the archive from its official source",
                cls=UnsafeContentError,
            )

    def find(self, member: str) -> Optional[str]:
        """The archive name of `member`: an exact path match, else the unique entry with that base name."""
        names = [n for n in self.names() if not n.startswith(_JUNK) and not PurePosixPath(n).name.startswith("._")]
        if member in names:
            return member
        base = PurePosixPath(member).name
        matches = [n for n in names if PurePosixPath(n.replace("\\", "/")).name == base]
        if len(matches) > 1:
            raise fetch_error(
                "invalid-content",
                f"{self.what} holds {len(matches)} files named {base}: " + ", ".join(matches[:4]),
                hint="extract the one you want and import it with --from",
            )
        return matches[0] if matches else None

    def check_member_size(self, name: str, limit: Optional[int]) -> int:
        """Refuse (before extracting anything) a member that would expand past `limit` bytes — the
        manifest's size — or, without one, past `zipcheck.MAX_RATIO` times its packed size (a zip bomb).
        Returns the member's declared size."""
        from decaenv.fetch.zipcheck import MAX_RATIO, RATIO_FLOOR

        declared = self.member_size(name) or 0
        packed = (
            self._archive.getinfo(name).compress_size
            if isinstance(self._archive, zipfile.ZipFile)
            else self.path.stat().st_size
        )
        cap = limit if limit else max(RATIO_FLOOR, packed * MAX_RATIO)
        if declared > cap:
            raise fetch_error(
                "archive-too-large",
                f"{self.what} refused: {name} would expand from {packed:,} to "
                f"{declared:,} bytes, more than the {cap:,} expected (a zip bomb or the wrong archive)",
                hint="nothing was extracted; get the archive from its official source",
                cls=UnsafeContentError,
            )
        return declared

    def member_size(self, name: str) -> Optional[int]:
        if isinstance(self._archive, zipfile.ZipFile):
            return self._archive.getinfo(name).file_size
        return self._archive.getmember(name).size

    def extract(self, name: str, target: Path, *, limit: Optional[int] = None, progress=None) -> Tuple[str, int]:
        """Stream member `name` into `target` (truncated first), refusing it first when it would expand
        past `limit` (see `check_member_size`). Returns (sha256, size)."""
        self.check_safe()
        cap = self.check_member_size(name, limit)
        hasher, size = new_hasher(), 0
        source: Optional[IO[bytes]]
        if isinstance(self._archive, zipfile.ZipFile):
            source = self._archive.open(name)
        else:
            source = self._archive.extractfile(self._archive.getmember(name))
        if source is None:
            raise fetch_error("invalid-content", f"{self.what}: {name} is not a regular file", cls=UnsafeContentError)
        try:
            with source, open(target, "wb") as out:
                while True:
                    chunk = source.read(1 << 20)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > cap:
                        raise fetch_error(
                            "archive-too-large",
                            f"{self.what}: {name} expands past its declared {cap:,} bytes",
                            hint="the archive is corrupt or hostile: get it again",
                            cls=UnsafeContentError,
                        )
                    out.write(chunk)
                    hasher.update(chunk)
                    if progress is not None:
                        progress.advance(len(chunk))
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, EOFError) and exc.errno is not None:
                raise
            raise fetch_error(
                "invalid-content",
                f"{self.what}: {name} is damaged in the archive ({exc})",
                hint="the archive is truncated or corrupt: get it again",
            ) from None
        return hasher.hexdigest(), size


def member_limit(entry) -> Optional[int]:
    """The most bytes an archive member may expand to for `entry`: its exact size, else twice its
    estimated size (plus 16 MB), else None (the compression-ratio cap applies)."""
    if entry.size:
        return entry.size
    if entry.approx_size:
        return 2 * entry.approx_size + (16 << 20)
    return None


# ---------------------------------------------------------------------------------------------- post

KeepAside = Callable[[Path, str], Path]
PostFn = Callable[[Path, KeepAside], str]
POST: Dict[str, PostFn] = {}


def register_post(name: str) -> Callable[[PostFn], PostFn]:
    def deco(fn: PostFn) -> PostFn:
        POST[name] = fn
        return fn

    return deco


@register_post("flame-npz")
def flame_npz(path: Path, keep_aside: KeepAside) -> str:
    """Write `<stem>.npz` beside a FLAME pickle (plain arrays, no pickle, no chumpy), atomically. An npz
    there that decaenv did not convert (no decaenv record in it) is moved aside first, never overwritten."""
    from decaenv.loaders.flame import NPZ_FORMAT, _npz_record, convert_to_npz

    target = path.with_suffix(".npz")
    if os.path.lexists(target):
        record = _npz_record(target) if target.is_file() and not target.is_symlink() else None
        if not record or str(record.get("decaenv_format", "")) != NPZ_FORMAT:
            keep_aside(target, f"{target.name} (not written by decaenv)")
    npz = convert_to_npz(path, target)
    return f"wrote {npz.name} (chumpy-free copy the runtime loads)"


def run_post(names, path: Path, keep_aside: KeepAside) -> List[str]:
    """Run the named post-processors on an installed file; returns their summaries.

    Args:
        keep_aside: moves a file the processor would overwrite out of the way (path, description) -> where.
    """
    notes = []
    for name in names:
        fn = POST.get(name)
        if fn is None:
            raise fetch_error(
                "invalid-content",
                f"unknown post-processor {name!r} in the manifest",
                hint="known: " + ", ".join(sorted(POST)),
            )
        notes.append(fn(path, keep_aside))
    return notes

"""Fetch manifest entries into a data dir: check, gate on the licence, lock, download, verify, install.

Per entry: a verified file is left alone (`present`); a file without a known hash is checked and its
hash recorded (`adopted`, trust on first use); otherwise each non-manual source is tried in order
under the entry's lock (concurrent fetchers wait, then find the file verified). A payload is verified
(size, sha256 or first-use record, content validator) in its staging file beside the destination and
only then renamed into place; a refused payload goes to the quarantine, never to the destination.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from decaenv.errors import DecaenvError, IntegrityError, os_error
from decaenv.fetch import downloaders
from decaenv.fetch.credentials import Credentials, get_credentials
from decaenv.fetch.errors import code_of, fetch_error
from decaenv.fetch.hashes import HashCache
from decaenv.fetch.http import DownloadContext, HttpOptions, make_session
from decaenv.fetch.locks import file_lock
from decaenv.fetch.manifest import Entry, License, Manifest, Source
from decaenv.fetch.processors import Archive, member_limit, run_post
from decaenv.fetch.progress import NullProgress, Progress
from decaenv.fetch.records import Licenses, LockFile
from decaenv.fetch.sniff import read_head, sniff
from decaenv.fetch.status import FileStatus, expected_hash, verify_entry
from decaenv.fetch.store import Staging, Store
from decaenv.fetch.validators import validate, validator_key
from decaenv.offline import ENV_OFFLINE, is_offline

log = logging.getLogger("decaenv.fetch")


@dataclass
class FetchOptions:
    """How `fetch_entries` behaves.

    Attributes:
        offline: never touch the network (present files are still checked).
        force: download again even when the file is verified.
        accept_license: accept the licences of what is fetched (recorded in the data dir).
        username: account name for login-form sources (`--username`).
        interactive: may we prompt (licence, password)? None: stdin/stderr are terminals.
        confirm_license: asks the user to accept a licence (returns True to accept).
        prompt_password / ask_username: hidden and visible input functions (tests inject them).
        progress: transfer progress receiver. on_event: one-line notes for the user (waiting, resuming).
        http: network options (timeouts, retries, injectable sleep).
        lock_timeout: give up waiting for another fetcher after this many seconds (None: wait).
        create_parents: create missing parents of the data dir (the default location only).
        hash_cache: hash cache (None: the user's).
    """

    offline: bool = False
    force: bool = False
    accept_license: bool = False
    username: Optional[str] = None
    interactive: Optional[bool] = None
    confirm_license: Optional[Callable[[License, Entry], bool]] = None
    prompt_password: Optional[Callable[[str], str]] = None
    ask_username: Optional[Callable[[str], str]] = None
    progress: Progress = field(default_factory=NullProgress)
    on_event: Callable[[str], None] = lambda text: None
    http: HttpOptions = field(default_factory=HttpOptions)
    lock_timeout: Optional[float] = None
    create_parents: bool = False
    hash_cache: Optional[HashCache] = None


@dataclass
class FileResult:
    """What happened to one entry.

    Attributes:
        action: "present" | "adopted" | "downloaded" | "resumed" | "imported" | "failed".
        status: the entry's status afterwards (None if it could not be checked).
        source: where the bytes came from (URL, "gdrive:<id>", a local path).
        error: the failure, when action == "failed". notes: extra one-liners (post-processing, takeovers).
        quarantined: where a refused payload was moved.
    """

    entry: Entry
    action: str
    status: Optional[FileStatus] = None
    source: Optional[str] = None
    error: Optional[DecaenvError] = None
    notes: List[str] = field(default_factory=list)
    quarantined: Optional[str] = None
    bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class Fetcher:
    """One fetch run over one data dir (shares the HTTP session, credentials and hash cache)."""

    def __init__(self, manifest: Manifest, data_dir: os.PathLike, options: Optional[FetchOptions] = None):
        self.manifest = manifest
        self.options = options or FetchOptions()
        self.store = Store(data_dir)
        self.cache = self.options.hash_cache or HashCache()
        self.lockfile = LockFile(data_dir)
        self._env: Optional[downloaders.Env] = None
        self._creds: Dict[str, Credentials] = {}
        self._invalid: Dict[str, str] = {}  # entry id -> why the file found at its destination is bad
        # source key -> a downloaded archive kept while `fetch` runs, for the other entries it holds a member of
        # (facenet-pytorch's wheel holds all three MTCNN files: one download, three extractions)
        self._archives: Optional[Dict[str, Staging]] = None

    # -- shared pieces ------------------------------------------------------------------------------
    def env(self) -> downloaders.Env:
        if self._env is None:
            self._env = downloaders.Env(make_session(self.options.http), self.options.http, self._credentials)
        return self._env

    def _credentials(self, realm_id: str, url: str) -> Credentials:
        if realm_id not in self._creds:
            realm = self.manifest.credentials[realm_id]
            self._creds[realm_id] = get_credentials(
                realm,
                url,
                username=self.options.username,
                interactive=self.options.interactive,
                prompt=self.options.prompt_password,
                ask_username=self.options.ask_username,
            )
        return self._creds[realm_id]

    def status(self, entry: Entry, level: str = "hash") -> FileStatus:
        return verify_entry(entry, self.store.root, level=level, cache=self.cache, lockfile=self.lockfile)

    # -- the run ------------------------------------------------------------------------------------
    def fetch(self, entries: Sequence[Entry]) -> List[FileResult]:
        """Fetch each entry (failures are reported per entry, never abort the others)."""
        self.store.ensure(create_parents=self.options.create_parents)
        results = []
        self._archives = {}
        try:
            for entry in entries:
                started = time.monotonic()
                try:
                    result = self.fetch_one(entry)
                except (DecaenvError, OSError) as exc:
                    error = exc if isinstance(exc, DecaenvError) else os_error(exc, entry.path(self.store.root))
                    result = FileResult(entry, "failed", error=error)
                    result.status = self._safe_status(entry)
                result.seconds = time.monotonic() - started
                results.append(result)
        finally:
            kept, self._archives = self._archives, None
            for staging in kept.values():
                staging.discard()
        return results

    def _safe_status(self, entry: Entry) -> Optional[FileStatus]:
        try:
            return self.status(entry)
        except (OSError, DecaenvError):
            return None

    def fetch_one(self, entry: Entry) -> FileResult:
        status = self.status(entry)
        if status.ok and not self.options.force:
            return FileResult(entry, "present", status)
        if status.status == "hash-unknown" and not self.options.force:
            adopted = self._adopt(entry, status)
            if adopted is not None:
                return adopted
            status = self.status(entry)
        if self.options.offline or is_offline():
            why = "--offline" if self.options.offline else f"{ENV_OFFLINE}=1"
            raise fetch_error(
                "offline",
                f"{entry.dest} is {status.status} and {why} forbids downloading it",
                hint=f"{entry.manual_text()}; then `decaenv fetch --from <file>`",
            )
        if entry.manual_only:
            raise fetch_error(
                "manual-only",
                f"{entry.dest} cannot be downloaded automatically ({entry.license.name})",
                hint=f"{entry.manual_text()}; then `decaenv fetch --from <file>`",
            )
        self._gate_license(entry)
        with file_lock(
            self.store.run_dir, entry.id, on_wait=self.options.on_event, timeout=self.options.lock_timeout
        ) as held:
            if held["took_over"]:
                self.options.on_event(
                    f"{entry.id}: took over the lock left by dead process {held['took_over'].get('pid')}"
                )
            status = self.status(entry)
            if status.ok and not self.options.force:
                return FileResult(
                    entry,
                    "present",
                    status,
                    notes=["fetched meanwhile by another process"] if held["waited"] > 0.5 else [],
                )
            return self._from_sources(entry)

    def _adopt(self, entry: Entry, status: FileStatus) -> Optional[FileResult]:
        """A present file with no known hash: validate it and record its hash (trust on first use)."""
        path = entry.path(self.store.root)
        try:
            summary = validate(path, entry.validator)
        except DecaenvError as exc:
            self.options.on_event(f"{entry.dest} is present but fails its content check ({exc.one_line()})")
            self._invalid[entry.id] = "invalid"
            return None
        self.lockfile.record(
            entry.id,
            dest=entry.dest,
            size=status.size or 0,
            sha256=status.sha256 or "",
            trust="first-use",
            source="found in the data dir",
        )
        st = path.stat()
        self.cache.store(
            path, st, status.sha256 or "", valid=(validator_key(entry.validator), summary) if entry.validator else None
        )
        return FileResult(
            entry,
            "adopted",
            self.status(entry),
            source=str(path),
            notes=[f"trusted on first use: sha256 {status.sha256} recorded ({summary})"],
        )

    def _gate_license(self, entry: Entry) -> None:
        lic = entry.license
        records = Licenses(self.store.root)
        if records.accepted(lic.id):
            return
        if self.options.accept_license:
            records.accept(lic.id, name=lic.name, url=lic.url, how="--accept-license")
            return
        interactive = self.options.interactive
        if interactive is None:
            import sys

            interactive = sys.stdin.isatty() and sys.stderr.isatty()
        if interactive and self.options.confirm_license is not None:
            if self.options.confirm_license(lic, entry):
                records.accept(lic.id, name=lic.name, url=lic.url, how="prompt")
                return
        raise fetch_error(
            "license-not-accepted",
            f"{entry.dest} is under the {lic.name}: {lic.url}",
            hint="read it, then run again and accept it (or pass --accept-license); acceptance is "
            "recorded once in the data dir",
        )

    # -- sources ------------------------------------------------------------------------------------
    def _from_sources(self, entry: Entry) -> FileResult:
        errors: List[DecaenvError] = []
        for source in entry.sources:
            download = downloaders.downloader_for(source)
            if download is None:
                continue
            try:
                return self._from_source(entry, source, download)
            except DecaenvError as exc:
                log.info("%s: source %s failed: %s", entry.id, source.kind, exc.one_line())
                errors.append(exc)
                code = code_of(exc)
                if code is not None and code.final:
                    break
        if not errors:
            raise fetch_error(
                "manual-only",
                f"{entry.dest} has no automatic source",
                hint=f"{entry.manual_text()}; then `decaenv fetch --from <file>`",
            )
        raise errors[0]

    def _from_source(self, entry: Entry, source: Source, download) -> FileResult:
        dest = entry.path(self.store.root)
        staged_as = dest.with_name(source.archive) if source.archive else dest
        key = downloaders.source_key(source)
        kept = self._archives.get(key) if source.archive and self._archives is not None else None
        if kept is not None and kept.path.is_file():
            return self._from_kept_archive(entry, source, kept, key)
        staging = self.store.adopt_partial(staged_as, key) or self.store.new_staging(staged_as, source=key)
        if staging.size():
            self.options.on_event(
                f"{entry.id}: resuming {staged_as.name} from {staging.size():,} bytes "
                f"left by process {staging.meta.get('adopted_from', '?')}"
            )
        approx = source.approx_size or entry.size or entry.approx_size
        need = (approx or 0) - staging.size() + ((entry.approx_size or 0) if source.archive else 0)
        try:
            self.store.preflight(max(need, 0), staged_as.name)
        except DecaenvError:
            if not staging.size():
                staging.discard()
            raise
        ctx = DownloadContext(
            what=staged_as.name,
            source_kind=source.kind,
            manual=entry.manual_text(),
            expected_size=None if source.archive else expected_hash(entry, self.store.root, self.lockfile)[1],
            progress=self.options.progress,
            label=entry.id,
        )
        try:
            transfer = download(self.env(), entry, source, staging, ctx)
        except DecaenvError as exc:
            raise self._after_failure(exc, staging, entry) from None
        except OSError as exc:  # disk full, quota, read-only...: keep what arrived for the next run
            raise self._after_failure(os_error(exc, staging.path, "write"), staging, entry) from None
        except BaseException:
            self._keep_partial(staging)  # Ctrl-C: the next run resumes it
            raise
        result = FileResult(
            entry,
            "resumed" if transfer.resumed_from else "downloaded",
            source=source.browser_url() if source.kind == "gdrive" else source.download_url,
            bytes=transfer.size - transfer.resumed_from,
        )
        if transfer.restarted:
            result.notes.append("the server ignored the resume request: downloaded from the start")
        if source.archive:
            final, digest, size = self._extract(entry, source, staging, keep_as=key)
            result.notes.append(f"extracted {source.member} from {source.archive}")
        else:
            final, digest, size = staging, transfer.sha256, transfer.size
        self.install(entry, final, digest, size, result, origin=result.source or "")
        return result

    def _after_failure(
        self, exc: DecaenvError, staging: Staging, entry: Entry, refused: bool = False, name: Optional[str] = None
    ) -> DecaenvError:
        """Quarantine or keep the staging file after a failure; returns the error to raise.

        `refused`: the staging file is a complete payload that failed verification (always quarantined).
        """
        code = code_of(exc)
        label = code.value if code is not None else "refused"
        name = name or staging.meta.get("dest") or entry.name
        where = None
        login = str(staging.meta.get("source", "")).startswith("form-post:")
        if exc.payload is not None:
            where = (
                self._quarantine_login_answer(exc, exc.payload, name, label)
                if login
                else self.store.quarantine_bytes(exc.payload, name, label)
            )
        if (refused or (code is not None and code.quarantine)) and staging.size():
            if login and sniff(read_head(staging.path)) not in ("zip", "tar", "gzip"):
                where = self._quarantine_login_answer(
                    exc, read_head(staging.path, 1 << 16), name, label, size=staging.size()
                )
            else:
                where = self.store.quarantine(staging.path, name, label)
            staging.discard()
        elif code is not None and code.resumable and staging.size() and sniff(read_head(staging.path)) != "html":
            self._keep_partial(staging)
        else:
            staging.discard()
        if where is not None:
            exc.hint = f"{exc.hint or ''} (refused payload kept in {where})".strip()
            exc.quarantined = str(where)
        return exc

    @staticmethod
    def _keep_partial(staging: Staging) -> None:
        """Save a partial's metadata for resuming; a partial whose metadata cannot be written (the disk is
        full) keeps its older metadata, or is dropped when it has none."""
        try:
            staging.save_meta()
        except OSError:
            if not staging.meta_path.exists():
                staging.discard()

    def _quarantine_login_answer(
        self, exc: DecaenvError, page: bytes, name: str, label: str, size: Optional[int] = None
    ) -> Path:
        """What a login POST answered, without its body (it may echo the submitted password): the
        classification, the HTTP status and the page title with the credentials blanked out."""
        import json

        from decaenv.fetch.errors import page_title

        title = self._blank_credentials(page_title(page.decode("utf-8", "replace")))
        exc.message = self._blank_credentials(exc.message, usernames=False)
        record = {
            "code": label,
            "http_status": getattr(exc, "http_status", None),
            "title": title,
            "bytes": len(page) if size is None else size,
            "note": "the answer to a login POST is never stored: it may echo the credentials",
        }
        return self.store.quarantine_bytes(json.dumps(record, indent=2).encode("utf-8"), f"{name}.json", label)

    def _blank_credentials(self, text: str, usernames: bool = True) -> str:
        for creds in self._creds.values():
            for secret in (creds.password.reveal(), creds.username if usernames else ""):
                if secret:
                    text = text.replace(secret, "***")
        return text

    def _from_kept_archive(self, entry: Entry, source: Source, kept: Staging, key: str) -> FileResult:
        """The entry's member from an archive already downloaded in this run (nothing is downloaded again)."""
        result = FileResult(entry, "downloaded", source=source.download_url, bytes=0)
        final, digest, size = self._extract(entry, source, kept, keep_as=key)
        result.notes.append(f"extracted {source.member} from {source.archive} (downloaded once in this run)")
        self.install(entry, final, digest, size, result, origin=result.source or "")
        return result

    def _extract(self, entry: Entry, source: Source, staging: Staging, keep_as: str = ""):
        """Pull the entry's member out of a staged archive into a second staging file beside the destination.
        The archive is then discarded, or kept for the rest of the run under `keep_as` while `fetch` runs."""
        dest = entry.path(self.store.root)
        member_stage = self.store.new_staging(dest, source=f"archive:{source.archive}")
        try:
            with Archive(
                staging.path,
                what=source.archive or staging.path.name,
                html_kind=source.kind if source.kind != "https" else "https",
            ) as archive:
                name = archive.find(source.member or entry.name)
                if name is None:
                    raise fetch_error(
                        "member-missing",
                        f"{source.archive} holds no {source.member}",
                        hint=f"is it the right archive? {entry.manual_text()}",
                        cls=IntegrityError,
                    )
                digest, size = archive.extract(name, member_stage.path, limit=member_limit(entry))
        except DecaenvError as exc:
            member_stage.discard()
            if self._archives is not None:
                self._archives.pop(keep_as, None)
            raise self._after_failure(exc, staging, entry) from None
        if keep_as and self._archives is not None:
            self._archives[keep_as] = staging
        else:
            staging.discard()
        return member_stage, digest, size

    # -- install ------------------------------------------------------------------------------------
    def check_staged(self, entry: Entry, staging: Staging, digest: str, size: int) -> str:
        """Size, sha256 (manifest or first-use record) and content of a staged file. Returns the summary."""
        want_sha, want_size, source = expected_hash(entry, self.store.root, self.lockfile)
        if want_size is not None and size != want_size:
            raise fetch_error(
                "size-mismatch",
                f"{entry.dest}: got {size:,} bytes, expected {want_size:,}",
                hint="the source serves something else; download it by hand: " + entry.manual_text(),
                cls=IntegrityError,
            )
        wrong_prefix = entry.prefix_mismatch(digest)
        if wrong_prefix:
            raise fetch_error(
                "hash-mismatch",
                f"{entry.dest}: {wrong_prefix}",
                hint="the payload is corrupt or not the official file; " + entry.manual_text(),
                cls=IntegrityError,
            )
        if want_sha is not None and digest != want_sha:
            origin = "the manifest" if source == "manifest" else "the hash recorded when it was first fetched"
            hint = (
                ("the payload is corrupt or not the official file; " + entry.manual_text())
                if source == "manifest"
                else (
                    f"if the upstream file legitimately changed, run `decaenv fetch --forget "
                    f"{entry.id}` and fetch it again"
                )
            )
            raise fetch_error(
                "hash-mismatch",
                f"{entry.dest}: sha256 {digest[:16]}… does not match {origin} ({want_sha[:16]}…)",
                hint=hint,
                cls=IntegrityError,
            )
        return validate(staging.path, entry.validator)

    def install(self, entry: Entry, staging: Staging, digest: str, size: int, result: FileResult, origin: str) -> None:
        """Verify a staged file, move it into place, record it, run post-processors."""
        try:
            summary = self.check_staged(entry, staging, digest, size)
        except DecaenvError as exc:
            raise self._after_failure(exc, staging, entry, refused=True) from None
        dest = entry.path(self.store.root)
        self._move_aside(entry, dest, digest, result)
        self.store.install(staging.path, dest)
        staging.discard()
        trust = "manifest" if entry.sha256 else "first-use"
        self.lockfile.record(entry.id, dest=entry.dest, size=size, sha256=digest, trust=trust, source=origin)
        self.cache.store(
            dest, dest.stat(), digest, valid=(validator_key(entry.validator), summary) if entry.validator else None
        )
        if trust == "first-use" and not entry.sha256:
            result.notes.append(f"no published hash: sha256 {digest} recorded (trust on first use)")
        result.notes.extend(run_post(entry.post, dest, keep_aside=self._keep_aside(result)))
        result.status = self.status(entry)

    def _move_aside(self, entry: Entry, dest: Path, digest: str, result: FileResult) -> None:
        """A file at `dest` that is not a verified copy (so decaenv did not put it there, or it changed
        since) is moved to `.decaenv/kept/` before `dest` is replaced, and named in the notes."""
        if not os.path.lexists(dest):
            return
        old = self.status(entry)
        if old.ok or (old.sha256 == digest and entry.id not in self._invalid):
            return
        why = self._invalid.get(entry.id, old.status)
        self._keep_aside(result)(dest, f"{entry.name} ({why})")

    def _keep_aside(self, result: FileResult) -> Callable[[Path, str], Path]:
        def keep(path: Path, what: str) -> Path:
            kept = self.store.keep_aside(path, path.name)
            result.notes.append(f"your previous {what} was moved to {kept}")
            self.options.on_event(f"kept your previous {path.name} as {kept}")
            return kept

        return keep


def fetch_entries(
    manifest: Manifest, data_dir: os.PathLike, entries: Sequence[Entry], options: Optional[FetchOptions] = None
) -> List[FileResult]:
    """Fetch `entries` into `data_dir` (see the module docstring)."""
    return Fetcher(manifest, data_dir, options).fetch(entries)

"""`decaenv fetch` as one library call: pick the mode, run it, return what happened as a `FetchReport`.

This module prints nothing and picks no exit code: the typer module (`decaenv.cli.fetch`) parses flags into a
`FetchRequest`, plugs in its progress display and licence prompt, then renders the report
(`decaenv.cli._fetch_output`) and turns `report.ok` into the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from decaenv.errors import UsageError
from decaenv.paths import DataDir

if TYPE_CHECKING:
    from decaenv.fetch.engine import FileResult
    from decaenv.fetch.manifest import Entry, License, Manifest
    from decaenv.fetch.progress import Progress
    from decaenv.fetch.records import Licenses
    from decaenv.fetch.status import FileStatus


@dataclass
class FetchRequest:
    """The parsed command line; `data_dir` is resolved once by the CLI (path and where it came from)."""

    data_dir: DataDir
    ids: List[str] = field(default_factory=list)
    list_only: bool = False
    verify: bool = False
    from_paths: List[Path] = field(default_factory=list)
    everything: bool = False
    offline: bool = False
    force: bool = False
    as_json: bool = False
    username: Optional[str] = None
    accept_license: bool = False
    forget: List[str] = field(default_factory=list)
    clean: bool = False


@dataclass
class Forgotten:
    """`--forget ID`: what happened to one id's first-use record.

    Attributes:
        id: the entry. outcome: "forgotten", "published" (the manifest has its hash: nothing to forget) or
        "no-record". sha256: the digest that was recorded (forgotten only).
    """

    id: str
    outcome: str
    sha256: Optional[str] = None


@dataclass
class FetchReport:
    """What `run` found (`list`, `verify`) or did (`fetch`, `import`).

    Attributes:
        mode: "list", "verify", "fetch", "import", "forget" or "clean". data_dir: the folder read or written.
        ok: list/verify: every required file verified; fetch/import: every file ready; forget/clean: True.
        entries / statuses: the files read and their state (list, verify), in the same order.
        results: one per file fetched or imported (fetch, import).
        forgotten / lockfile: per id, and the first-use record file (forget).
        removed / freed_bytes / quarantine: what `--clean` emptied.
    """

    mode: str
    data_dir: Path
    manifest: Manifest
    ok: bool
    entries: List[Entry] = field(default_factory=list)
    statuses: List[FileStatus] = field(default_factory=list)
    results: List[FileResult] = field(default_factory=list)
    forgotten: List[Forgotten] = field(default_factory=list)
    lockfile: Optional[Path] = None
    removed: int = 0
    freed_bytes: int = 0
    quarantine: Optional[Path] = None

    @property
    def licenses(self) -> Licenses:
        """The licence acceptances recorded in the data dir (read when asked)."""
        from decaenv.fetch.records import Licenses

        return Licenses(self.data_dir)

    def to_json(self) -> Dict[str, Any]:
        """The `--json` document (schema in docs/commands/fetch.md)."""
        from decaenv.fetch import render

        licenses = self.licenses
        if self.mode in ("list", "verify"):
            files = [render.entry_json(e, self.data_dir, s, licenses) for e, s in zip(self.entries, self.statuses)]
        else:
            files = [render.result_json(r, self.data_dir, licenses) for r in self.results]
        return render.document(self.mode, self.data_dir, self.manifest, files, self.ok)


def _mode(req: FetchRequest) -> str:
    modes = [
        m
        for m, on in (
            ("list", req.list_only),
            ("verify", req.verify),
            ("import", bool(req.from_paths)),
            ("forget", bool(req.forget)),
            ("clean", req.clean),
        )
        if on
    ]
    if len(modes) > 1:
        flag = {"import": "from"}
        raise UsageError(
            f"--{flag.get(modes[0], modes[0])} and --{flag.get(modes[1], modes[1])} cannot be combined",
            hint="run them one after the other",
        )
    mode = modes[0] if modes else "fetch"
    if mode in ("list", "verify", "forget", "clean") and (
        req.force or req.offline or req.username or req.accept_license
    ):
        raise UsageError(
            f"--{mode} only reads the data dir" if mode in ("list", "verify") else f"--{mode} does not download",
            hint="drop --force/--offline/--username/--accept-license",
        )
    return mode


def _split_ids(req: FetchRequest, manifest) -> None:
    """With --from, positional arguments that are existing paths (not ids) are more files to import."""
    if not req.from_paths:
        return
    known = {e.id for e in manifest.entries} | set(manifest.groups())
    extra = [i for i in req.ids if i not in known and Path(i).expanduser().exists()]
    req.from_paths.extend(Path(i) for i in extra)
    req.ids = [i for i in req.ids if i not in extra]


def run(
    req: FetchRequest,
    *,
    progress: Optional[Progress] = None,
    on_event: Callable[[str], None] = lambda text: None,
    confirm_license: Optional[Callable[[License, Entry], bool]] = None,
) -> FetchReport:
    """Run the command.

    Args:
        req: the parsed command line.
        progress: receives transfer progress (None: none shown). on_event: one-line notes for the user
            (waiting for a lock, resuming). confirm_license: asks whether a licence is accepted.
    Raises:
        UsageError: unknown ids, clashing modes, a missing data dir for list/verify.
    """
    from decaenv.fetch.manifest import load_manifest

    manifest = load_manifest()
    _split_ids(req, manifest)
    mode = _mode(req)
    for entry_id in req.ids:
        manifest.resolve(entry_id)  # unknown ids: a usage error before anything happens
    if mode in ("list", "verify"):
        return _read_only(req, manifest, mode)
    if mode == "forget":
        return _forget(req, manifest)
    if mode == "clean":
        return _clean(req, manifest)
    return _write(req, manifest, mode, progress=progress, on_event=on_event, confirm_license=confirm_license)


def _forget(req: FetchRequest, manifest: Manifest) -> FetchReport:
    """`--forget ID`: drop first-use records the user knows are wrong (the next fetch records anew)."""
    from decaenv.fetch.records import LockFile

    if req.ids:
        raise UsageError("--forget takes the ids itself", hint="write `decaenv fetch --forget ID [--forget ID2]`")
    root = req.data_dir.require_existing().path
    lockfile = LockFile(root)
    forgotten = []
    for entry_id in req.forget:
        entry = manifest.get(entry_id)
        record = lockfile.get(entry_id)
        if entry.sha256:
            forgotten.append(Forgotten(entry_id, "published"))
        elif lockfile.forget(entry_id):
            forgotten.append(Forgotten(entry_id, "forgotten", record["sha256"] if record else None))
        else:
            forgotten.append(Forgotten(entry_id, "no-record"))
    return FetchReport("forget", root, manifest, True, forgotten=forgotten, lockfile=lockfile.path)


def _clean(req: FetchRequest, manifest: Manifest) -> FetchReport:
    """`--clean`: empty the quarantine of refused payloads."""
    from decaenv.fetch.store import Store

    root = req.data_dir.require_existing().path
    store = Store(root)
    count, freed = store.clean_quarantine()
    return FetchReport("clean", root, manifest, True, removed=count, freed_bytes=freed, quarantine=store.quarantine_dir)


def _read_only(req: FetchRequest, manifest: Manifest, mode: str) -> FetchReport:
    from decaenv.fetch.status import verify_entry

    root = req.data_dir.require_existing().path
    entries = manifest.select(req.ids, everything=not req.ids)
    level, rehash = ("content", True) if mode == "verify" else ("hash", False)
    statuses = [verify_entry(e, root, level=level, rehash=rehash) for e in entries]
    named = {e.id for i in req.ids for e in manifest.resolve(i)}
    required = {e.id for e in entries if (e.default and e.applies()) or e.id in named}
    ok = all(
        s.status in ("verified", "hash-unknown") if s.status != "missing" else s.id not in required for s in statuses
    )
    return FetchReport(mode, root, manifest, ok, entries=entries, statuses=statuses)


def _write(
    req: FetchRequest,
    manifest: Manifest,
    mode: str,
    *,
    progress: Optional[Progress],
    on_event: Callable[[str], None],
    confirm_license: Optional[Callable[[License, Entry], bool]],
) -> FetchReport:
    from decaenv.fetch.engine import Fetcher, FetchOptions
    from decaenv.fetch.http import HttpOptions
    from decaenv.fetch.progress import NullProgress

    resolved = req.data_dir
    options = FetchOptions(
        offline=req.offline,
        force=req.force,
        accept_license=req.accept_license,
        username=req.username,
        confirm_license=confirm_license,
        progress=progress or NullProgress(),
        http=HttpOptions.from_env(),
        on_event=on_event,
        create_parents=resolved.source == "default",
    )
    fetcher = Fetcher(manifest, resolved.path, options)
    if mode == "import":
        from decaenv.fetch.importer import import_paths

        entries = manifest.select(req.ids) if req.ids else list(manifest.entries)
        results = import_paths(fetcher, entries, req.from_paths)
    else:
        results = fetcher.fetch(manifest.select(req.ids, everything=req.everything))
    return FetchReport(mode, resolved.path, manifest, all(r.ok for r in results), results=results)


def needs_manual_route(result: FileResult) -> bool:
    """Whether a failed file should be downloaded by hand (no network, login, quota, manual-only source)."""
    from decaenv.fetch.errors import code_of

    code = code_of(result.error) if result.error is not None else None
    return code is not None and code.by_hand

"""`decaenv fetch` as one library call: pick the mode, run it, render it, return the exit code.

The typer module (`decaenv.cli.fetch`) only parses flags into a `FetchRequest`; everything a test
wants to reach without a terminal is here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from decaenv.errors import UsageError
from decaenv.paths import DataDir


@dataclass
class FetchRequest:
    """The parsed command line."""

    data_dir: Callable[[bool], DataDir]          # resolve(must_exist)
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
    quiet: bool = False
    verbose: bool = False
    forget: List[str] = field(default_factory=list)
    clean: bool = False
    progress: bool = True                        # False: no progress bars (--no-progress, non-TTY, CI)


def _mode(req: FetchRequest) -> str:
    modes = [m for m, on in (("list", req.list_only), ("verify", req.verify), ("import", bool(req.from_paths)),
                             ("forget", bool(req.forget)), ("clean", req.clean)) if on]
    if len(modes) > 1:
        flag = {"import": "from"}
        raise UsageError(f"--{flag.get(modes[0], modes[0])} and --{flag.get(modes[1], modes[1])} cannot be combined",
                         hint="run them one after the other")
    mode = modes[0] if modes else "fetch"
    if mode in ("list", "verify", "forget", "clean") and (req.force or req.offline or req.username
                                                          or req.accept_license):
        raise UsageError(f"--{mode} only reads the data dir" if mode in ("list", "verify") else
                         f"--{mode} does not download", hint="drop --force/--offline/--username/--accept-license")
    return mode


def _split_ids(req: FetchRequest, manifest) -> None:
    """With --from, positional arguments that are existing paths (not ids) are more files to import."""
    if not req.from_paths:
        return
    known = {e.id for e in manifest.entries} | set(manifest.groups())
    extra = [i for i in req.ids if i not in known and Path(i).expanduser().exists()]
    req.from_paths.extend(Path(i) for i in extra)
    req.ids = [i for i in req.ids if i not in extra]


def run(req: FetchRequest) -> int:
    """Run the command; returns the exit code (0 all good, 1 some file failed or is not verified)."""
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
        return _clean(req)
    return _write(req, manifest, mode)


def _forget(req: FetchRequest, manifest) -> int:
    """`--forget ID`: drop first-use records the user knows are wrong (the next fetch records anew)."""
    from decaenv.fetch.records import LockFile

    if req.ids:
        raise UsageError("--forget takes the ids itself", hint="write `decaenv fetch --forget ID [--forget ID2]`")
    lockfile = LockFile(req.data_dir(True).path)
    for entry_id in req.forget:
        entry = manifest.get(entry_id)
        record = lockfile.get(entry_id)
        if entry.sha256:
            _say(f"{entry_id}: its hash is published in the manifest, there is no first-use record to forget")
        elif lockfile.forget(entry_id):
            _say(f"{entry_id}: forgot the first-use record (sha256 {record['sha256'] if record else '?'}); "
                 f"the next `decaenv fetch {entry_id}` checks and records the file again")
        else:
            _say(f"{entry_id}: no first-use record in {lockfile.path}")
    return 0


def _clean(req: FetchRequest) -> int:
    """`--clean`: empty the quarantine of refused payloads."""
    from decaenv.fetch.store import Store

    store = Store(req.data_dir(True).path)
    count, freed = store.clean_quarantine()
    _say(f"removed {count} refused payload(s) ({freed / 1e6:,.1f} MB) from {store.quarantine_dir}")
    return 0


def _say(text: str, *, err: bool = False) -> None:
    """One plain line (no rich: `fetch -q`/`--json` runs never import it)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _read_only(req: FetchRequest, manifest, mode: str) -> int:
    from decaenv.cli._console import print_json
    from decaenv.fetch import render
    from decaenv.fetch.records import Licenses
    from decaenv.fetch.status import verify_entry

    root = req.data_dir(True).path
    entries = manifest.select(req.ids, everything=not req.ids)
    level, rehash = ("content", True) if mode == "verify" else ("hash", False)
    statuses = [verify_entry(e, root, level=level, rehash=rehash) for e in entries]
    licenses = Licenses(root)
    named = {e.id for i in req.ids for e in manifest.resolve(i)}
    required = {e.id for e in entries if (e.default and e.applies()) or e.id in named}
    ok = all(s.status in ("verified", "hash-unknown") if s.status != "missing" else s.id not in required
             for s in statuses)
    if req.as_json:
        print_json(render.document(mode, root, manifest,
                                   [render.entry_json(e, root, s, licenses) for e, s in zip(entries, statuses)], ok))
    else:
        from decaenv.cli._console import make_console

        render.print_table(make_console(), manifest, root, statuses, licenses)
    if mode == "verify":
        return 0 if ok else 1
    return 0


def _write(req: FetchRequest, manifest, mode: str) -> int:
    from decaenv.cli._console import print_json
    from decaenv.fetch import render
    from decaenv.fetch.engine import Fetcher, FetchOptions
    from decaenv.fetch.http import HttpOptions
    from decaenv.fetch.progress import NullProgress
    from decaenv.fetch.records import Licenses

    resolved = req.data_dir(False)
    progress = NullProgress() if (req.quiet or req.as_json or not req.progress) else render.RichProgress()
    options = FetchOptions(offline=req.offline, force=req.force, accept_license=req.accept_license,
                           username=req.username, confirm_license=_confirm_license,
                           progress=progress, http=HttpOptions.from_env(),
                           on_event=(lambda text: None) if req.quiet or req.as_json else
                           (lambda text: _say(f"decaenv: {text}", err=True)),
                           create_parents=resolved.source == "default")
    fetcher = Fetcher(manifest, resolved.path, options)
    try:
        if mode == "import":
            from decaenv.fetch.importer import import_paths

            entries = manifest.select(req.ids) if req.ids else list(manifest.entries)
            results = import_paths(fetcher, entries, req.from_paths)
        else:
            results = fetcher.fetch(manifest.select(req.ids, everything=req.everything))
    finally:
        if hasattr(progress, "close"):
            progress.close()
    ok = all(r.ok for r in results)
    licenses = Licenses(resolved.path)
    if req.as_json:
        print_json(render.document(mode, resolved.path, manifest,
                                   [render.result_json(r, resolved.path, licenses) for r in results], ok))
    else:
        _report(req, results, resolved.path)
    return 0 if ok else 1


def _report(req: FetchRequest, results, data_dir) -> None:
    """Human output: a line per file (not with -q), the errors, the manual route, the verdict."""
    from decaenv.fetch import render

    for result in results:
        if not req.quiet:
            _say(render.result_line(result))
        if req.verbose:
            for note in result.notes:
                _say(f"       {note}")
    for result in results:
        if result.error is not None:
            who = result.entry.id if result.entry.id != "?" else result.source
            _say(f"decaenv: error: {who}: {result.error.one_line()}", err=True)
    by_hand = [r for r in results if r.error is not None and _needs_hand(r)]
    for line in render.manual_block(by_hand):
        _say(line, err=True)
    if not results:
        _say("nothing to fetch: name files by id (see `decaenv fetch --list`)")
    else:
        _say(f"{sum(1 for r in results if r.ok)}/{len(results)} file(s) ready in {data_dir}")


def _needs_hand(result) -> bool:
    from decaenv.fetch.errors import code_of

    code = code_of(result.error)
    return code is not None and code.by_hand


def _confirm_license(lic, entry) -> bool:
    """Ask on the terminal (stderr) whether the licence of `entry` is accepted."""
    sys.stderr.write(f"\n{entry.dest} is under the {lic.name}.\n  Read it: {lic.url}\n")
    if lic.register:
        sys.stderr.write(f"  An account is needed: {lic.register}\n")
    sys.stderr.write("Do you accept this licence? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")

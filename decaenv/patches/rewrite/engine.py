"""`decaenv patch`: plan, apply and revert the rewrites of `rules.RULES` in a user's DECA checkout.

Safety rules:
* a file is changed only if every known breakage in it can be rewritten; otherwise it is reported with the
  lines decaenv does not know how to fix, and left as it is;
* the original bytes of every changed file are kept under `DECA_DIR/.decaenv-patch/originals/` and recorded
  (sha256 before and after) in `DECA_DIR/.decaenv-patch/manifest.json`, which is written *before* the file is
  replaced, so an interrupted run can always be reverted;
* a file changed by someone else since decaenv patched it is neither re-patched nor reverted (unless forced);
* files are read and written as bytes (no newline or encoding translation); writes are atomic; `--revert`
  restores the recorded originals byte for byte, with their permissions and timestamps.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from decaenv.errors import DataError, UsageError
from decaenv.patches.rewrite.rules import CPP, PY, rules_for

STATE_DIR = ".decaenv-patch"
MANIFEST = "manifest.json"
ORIGINALS = "originals"
NEEDS_EXEC = "needs exec"  # nothing to rewrite; lines that `decaenv exec` handles at run time (not a problem)
SKIP_DIRS = {".git", ".hg", ".svn", STATE_DIR, "__pycache__", "node_modules", "site-packages", ".tox",
             ".mypy_cache", ".pytest_cache", ".eggs"}


@dataclass
class FileReport:
    """The outcome for one file.

    Attributes:
        path: relative to the checkout (POSIX separators).
        status: "patched" (or "would patch" in a dry run), "reverted" ("would revert"), "needs exec" (only
            lines that `decaenv exec` handles), "unrecognized", "modified since patched", "already reverted",
            "missing", "unreadable".
        rules: {rule id: number of replacements}.
        diff: unified diff of the change (empty when none).
        notes: reported lines ("line 10: 'gcc-7' (... run DECA with `decaenv exec` ...)"); a patched file may
            have notes too: lines a `decaenv exec` shim handles.
    """

    path: str
    status: str
    rules: Dict[str, int] = field(default_factory=dict)
    diff: str = ""
    notes: List[str] = field(default_factory=list)


@dataclass
class Outcome:
    """Everything `patch_checkout` / `revert_checkout` did, in file order."""

    root: Path
    dry_run: bool
    files: List[FileReport] = field(default_factory=list)

    def by_status(self, *statuses: str) -> List[FileReport]:
        return [f for f in self.files if f.status in statuses]

    @property
    def problems(self) -> List[FileReport]:
        """Files left untouched that still need attention."""
        return self.by_status("unrecognized", "modified since patched", "missing", "unreadable")

    def diff(self) -> str:
        """The unified diff of all files (undecodable bytes kept as surrogate escapes: see `diff_bytes`)."""
        return "".join(f.diff for f in self.files)

    def diff_bytes(self) -> bytes:
        """The unified diff with every file's original bytes (what `git apply` needs)."""
        return _encode(self.diff())

    def to_json(self, revert: bool) -> Dict[str, object]:
        files = [dict(vars(f), diff=printable(f.diff)) for f in self.files]
        return {"root": str(self.root), "dry_run": self.dry_run, "revert": revert, "files": files}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_checkout(root: os.PathLike) -> Path:
    """The checkout folder, resolved.

    Raises:
        UsageError: it does not exist, is not a folder, or does not look like a DECA checkout.
    """
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UsageError(f"{path} is not a folder", hint="give the folder of your DECA checkout (it holds decalib/)")
    if not (path / "decalib").is_dir():
        raise UsageError(f"{path} does not look like a DECA checkout (no decalib/ folder)",
                         hint="give the folder that holds decalib/ and demos/")
    return path.resolve()


def source_files(root: Path) -> List[Path]:
    """Python and C++/CUDA sources under `root`, sorted by path; VCS folders, virtual envs and symlinks skipped."""
    suffixes = PY + CPP
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not (here / d / "pyvenv.cfg").exists()
                       and not (here / d).is_symlink()]
        found.extend(here / name for name in filenames
                     if name.endswith(suffixes) and not (here / name).is_symlink())
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def printable(text: str) -> str:
    """`text` with undecodable bytes shown as U+FFFD (for terminals and JSON; files keep their bytes)."""
    return _encode(text).decode("utf-8", errors="replace")


def rewrite_text(name: str, text: str, rel: Optional[str] = None) -> Tuple[str, Dict[str, int], List[str], List[str]]:
    """Apply the rules for a file name to its text.

    Args:
        name: the file name (selects the rules).
        text: its content.
        rel: its path in the checkout (decides which leftovers `decaenv exec` handles; default `name`).

    Returns:
        (new text, {rule id: replacements}, leftover notes, exec notes): with leftover notes the caller must not
        write; exec notes name lines left as they are because a `decaenv exec` shim handles them at run time.
    """
    counts: Dict[str, int] = {}
    for rule in rules_for(name):
        text, n = rule.rewrite(text)
        if n:
            counts[rule.id] = n
    notes, exec_notes = [], []
    for rule in rules_for(name):
        if rule.leftover is None:
            continue
        covered = rule.covered_by_exec(rel or name)
        for match in rule.leftover.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            snippet = printable(" ".join(match.group(0).split())[:100])
            if covered:
                exec_notes.append(f"line {line}: {snippet} ({rule.id}: not rewritten; run DECA with "
                                  f"`decaenv exec`, whose {rule.exec_shim} shim handles it)")
            else:
                notes.append(f"line {line}: {snippet} ({rule.id}: form not recognised, fix it by hand)")
    return text, counts, notes, exec_notes


def unified_diff(rel: str, old: str, new: str) -> str:
    """A `git apply`/`patch -p1` compatible diff of one file."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=f"a/{rel}", tofile=f"b/{rel}")
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


class PatchBackups:
    """The `.decaenv-patch` folder of a checkout: manifest plus original bytes of each changed file."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / STATE_DIR
        self.entries: Dict[str, Dict[str, object]] = self._read()

    def _read(self) -> Dict[str, Dict[str, object]]:
        path = self.dir / MANIFEST
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = dict(data["files"])
            for rel, entry in entries.items():
                _check_entry(self.root, rel, entry)
            return entries
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"decaenv's patch record {path} is damaged ({exc})",
                            hint=f"restore the files from {self.dir / ORIGINALS} by hand, then delete {self.dir}",
                            path=path) from exc

    def original(self, rel: str) -> Path:
        return self.dir / ORIGINALS / rel

    def save(self) -> None:
        """Write the manifest atomically (or remove the folder when nothing is recorded any more)."""
        if not self.entries:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        self.dir.mkdir(exist_ok=True)
        (self.dir / ".gitignore").write_text("*\n", encoding="utf-8")
        payload = json.dumps({"version": 1, "tool": "decaenv patch", "files": self.entries}, indent=2,
                             sort_keys=True)
        write_atomic(self.dir / MANIFEST, _encode(payload + "\n"))

    def record(self, rel: str, src: Path, original: bytes, patched: bytes, rules: Dict[str, int]) -> None:
        """Keep the original bytes (once) and record the change; saves the manifest."""
        backup = self.original(rel)
        if not backup.is_file():
            backup.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(backup, original, like=src)
        self.entries[rel] = {"original_sha256": sha256_bytes(original), "patched_sha256": sha256_bytes(patched),
                             "rules": dict(sorted(rules.items()))}
        self.save()


def _check_entry(root: Path, rel: str, entry: Dict[str, object]) -> None:
    """A manifest entry must name a file inside the checkout and carry both digests (else ValueError)."""
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts or not parts or parts[0] == STATE_DIR:
        raise ValueError(f"entry {rel!r} points outside the checkout")
    for key in ("original_sha256", "patched_sha256"):
        if not isinstance(entry.get(key), str) or len(entry[key]) != 64:
            raise ValueError(f"entry {rel!r} has no valid {key}")
    if not isinstance(entry.get("rules", {}), dict):
        raise ValueError(f"entry {rel!r} has malformed rules")


def write_atomic(path: Path, data: bytes, like: Optional[Path] = None) -> None:
    """Write `data` to `path` through a temporary file in the same folder; copy mode/times from `like`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if like is not None:
            shutil.copystat(like, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _merge(a: Dict[str, int], b: Dict[str, int]) -> Dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}


def patch_checkout(root: os.PathLike, *, dry_run: bool = False, force: bool = False) -> Outcome:
    """Rewrite the known breakages in a DECA checkout (see the module docstring for the safety rules).

    Args:
        root: the checkout (the folder holding decalib/).
        dry_run: only compute the diffs; write nothing.
        force: also patch files changed since decaenv patched them (their current content becomes the
            original that a revert restores).
    """
    root = check_checkout(root)
    store = PatchBackups(root)
    outcome = Outcome(root, dry_run)
    for path in source_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            report = _patch_file(store, path, rel, dry_run, force)
        except OSError as exc:
            raise _write_error(exc, rel, root) from exc
        if report is not None:
            outcome.files.append(report)
    return outcome


def _write_error(exc: OSError, rel: str, root: Path) -> DataError:
    return DataError(f"cannot update {rel} in {root}: {exc.strerror or exc}",
                     hint=f"check the permissions and free space; files changed so far are recorded, and "
                          f"`decaenv patch {root} --revert` restores them", path=root / rel)


def _patch_file(store: PatchBackups, path: Path, rel: str, dry_run: bool, force: bool) -> Optional[FileReport]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileReport(rel, "unreadable", notes=[f"cannot read it: {exc.strerror or exc}"])
    entry = store.entries.get(rel)
    digest = sha256_bytes(data)
    known = entry is not None and digest in (entry["patched_sha256"], entry["original_sha256"])
    if entry is not None and not known and not force:
        return FileReport(rel, "modified since patched",
                          notes=["changed since decaenv patched it: not touched (--force patches it anyway)"])
    text = _decode(data)
    new, counts, notes, exec_notes = rewrite_text(path.name, text, rel)
    if notes:
        return FileReport(rel, "unrecognized", counts, notes=notes + exec_notes)
    if not counts:
        return FileReport(rel, NEEDS_EXEC, notes=exec_notes) if exec_notes else None
    new_bytes = _encode(new)
    report = FileReport(rel, "would patch" if dry_run else "patched", counts, unified_diff(rel, text, new),
                        notes=exec_notes)
    if not dry_run:
        if entry is not None and known and store.original(rel).is_file():
            earlier = dict(entry["rules"]) if digest == entry["patched_sha256"] else {}
            original, rules = store.original(rel).read_bytes(), _merge(earlier, counts)
        else:
            if store.original(rel).is_file():
                store.original(rel).unlink()  # forced: the current content is the new original
            original, rules = data, counts
        store.record(rel, path, original, new_bytes, rules)
        write_atomic(path, new_bytes)
        shutil.copymode(store.original(rel), path)
    return report


def revert_checkout(root: os.PathLike, *, dry_run: bool = False, force: bool = False) -> Outcome:
    """Restore the originals of every file `patch_checkout` changed, byte for byte.

    Args:
        root: the checkout.
        dry_run: only compute the diffs.
        force: also restore files changed since decaenv patched them (their changes are lost) or deleted.
    """
    root = check_checkout(root)
    store = PatchBackups(root)
    outcome = Outcome(root, dry_run)
    for rel in sorted(store.entries):
        try:
            outcome.files.append(_revert_file(store, rel, dry_run, force))
        except OSError as exc:
            store.save()
            raise _write_error(exc, rel, root) from exc
    if not dry_run:
        store.save()
    return outcome


def _revert_file(store: PatchBackups, rel: str, dry_run: bool, force: bool) -> FileReport:
    entry, path, backup = store.entries[rel], store.root / rel, store.original(rel)
    if not backup.is_file() or sha256_bytes(backup.read_bytes()) != entry["original_sha256"]:
        return FileReport(rel, "missing", notes=[f"decaenv's copy of the original ({backup}) is missing or damaged"])
    original = backup.read_bytes()
    current = path.read_bytes() if path.is_file() else None
    if current is not None and sha256_bytes(current) == entry["original_sha256"]:
        if not dry_run:
            _forget(store, rel)
        return FileReport(rel, "already reverted")
    if current is None and not force:
        return FileReport(rel, "missing", notes=["the file was deleted: not restored (--force restores it)"])
    if current is not None and sha256_bytes(current) != entry["patched_sha256"] and not force:
        return FileReport(rel, "modified since patched",
                          notes=["changed since decaenv patched it: not restored (--force restores the original "
                                 "and loses those changes)"])
    diff = unified_diff(rel, _decode(current or b""), _decode(original))
    if not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, original, like=backup)
        _forget(store, rel)
    return FileReport(rel, "would revert" if dry_run else "reverted", dict(entry["rules"]), diff)


def _forget(store: PatchBackups, rel: str) -> None:
    store.original(rel).unlink()
    parent = store.original(rel).parent
    while parent != store.dir / ORIGINALS and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    del store.entries[rel]

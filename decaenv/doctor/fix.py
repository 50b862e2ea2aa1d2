"""`decaenv doctor --fix`: collect the fix actions of a report, apply the safe ones, leave the rest to the user.

Safe actions touch only caches and the data dir: removing stale extension locks and partial builds (inside
torch's extension cache or decaenv's own folders), converting the FLAME pickle to a pickle-free npz, building
the rasterizer, fetching missing files. Package installs need `--yes`. Nothing outside those folders is ever
removed; system folders never.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Sequence

from decaenv.doctor.model import FixAction, Report

SYSTEM_PREFIXES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib64",
    "/proc",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib",
    "C:\\Windows",
    "C:\\Program Files",
    "/System",
    "/Library",
)


@dataclass
class FixOutcome:
    """What happened to one action: state is "done", "planned" (dry run), "left" (needs --yes) or "failed"."""

    action: FixAction
    state: str
    message: str


def plan(report: Report) -> List[FixAction]:
    """Every fix action in the report, de-duplicated, safe ones first."""
    seen, actions = set(), []
    for _item, result in report.rows():
        for action in result.fixes:
            key = (action.kind, json.dumps(dict(action.args), sort_keys=True))
            if key not in seen:
                seen.add(key)
                actions.append(action)
    probe = report.get("rasterizer-build")
    if probe is not None and probe.status.value in ("warn", "fail"):  # the build probe failed: building would too
        actions = [a for a in actions if a.kind != "build-rasterizer"]
    removed_dirs = [Path(a.args["path"]) for a in actions if a.kind == "remove-path"]
    actions = [
        a
        for a in actions
        if not (a.kind == "remove-path" and any(_inside(Path(a.args["path"]), d) for d in removed_dirs))
    ]
    return sorted(actions, key=lambda a: a.needs_yes)


def allowed_roots(extension_roots: Iterable[str]) -> List[Path]:
    """Folders `remove-path` may delete inside: torch extension caches and decaenv's cache/build folders."""
    from decaenv.paths import build_dir, cache_dir

    roots = [Path(r) for r in extension_roots if r] + [cache_dir(), build_dir()]
    return [r.resolve() for r in roots]


def _is_system(path: Path) -> bool:
    text = str(path)
    return any(text == p or text.startswith(p.rstrip("/\\") + os.sep) for p in SYSTEM_PREFIXES)


def is_removable(path: Path, roots: Sequence[Path]) -> bool:
    """True for a path strictly inside one of `roots`, none of which may be a system folder."""
    try:
        resolved = path.resolve()
    except OSError:
        return False
    safe_roots = [r for r in roots if not _is_system(r)]
    return not _is_system(resolved) and any(_inside(resolved, root) for root in safe_roots)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return path != root


class Fixer:
    """Applies actions.

    Args:
        python: interpreter for pip and for `python -m decaenv` subcommands. data_dir: the data dir.
        extension_roots: torch extension cache folders (from the extension-cache check). yes: allow package
        changes. dry_run: change nothing. say: output callback (one line per call).
    """

    def __init__(
        self,
        python: str,
        data_dir: Path,
        extension_roots: Iterable[str],
        *,
        yes: bool = False,
        dry_run: bool = False,
        say: Callable[[str], None] = print,
    ):
        self.python = python
        self.data_dir = Path(data_dir)
        self.roots = allowed_roots(extension_roots)
        self.yes = yes
        self.dry_run = dry_run
        self.say = say

    def apply(self, actions: Sequence[FixAction]) -> List[FixOutcome]:
        outcomes = []
        for action in actions:
            if action.needs_yes and not self.yes:
                outcomes.append(FixOutcome(action, "left", f"needs --yes: {self.command(action)}"))
            elif self.dry_run:
                outcomes.append(FixOutcome(action, "planned", self.command(action)))
            else:
                try:
                    handler = getattr(self, "_" + action.kind.replace("-", "_"))
                    outcomes.append(FixOutcome(action, "done", handler(action)))
                except Exception as exc:  # noqa: BLE001 - one failed action never stops the others
                    outcomes.append(FixOutcome(action, "failed", f"{type(exc).__name__}: {exc}"))
        return outcomes

    def command(self, action: FixAction) -> str:
        """The shell equivalent of an action (shown for dry runs and for what is left to the user)."""
        args = action.args
        if action.kind == "remove-path":
            return f"rm -rf {args['path']}"
        if action.kind == "convert-flame":
            return f"decaenv convert flame {args['src']} -o {args['dst']}"
        if action.kind == "build-rasterizer":
            return "decaenv build"
        if action.kind == "fetch":
            return f"decaenv --data-dir {self.data_dir} fetch {' '.join(args.get('ids', []))}"
        if action.kind == "pip-install":
            return " ".join([self.python, "-m", "pip", "install"] + self._pip_args(action))
        return action.description

    def _pip_args(self, action: FixAction) -> List[str]:
        if "args" in action.args:
            return list(action.args["args"])
        return list(action.args.get("specs", []))

    def _remove_path(self, action: FixAction) -> str:
        path = Path(action.args["path"])
        if not is_removable(path, self.roots):
            raise PermissionError(f"refusing to remove {path}: outside torch's extension cache and decaenv's folders")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        return f"removed {path}"

    def _convert_flame(self, action: FixAction) -> str:
        from decaenv.loaders.flame import convert_to_npz

        dst = convert_to_npz(action.args["src"], action.args["dst"])
        return f"wrote {dst} (pickle-free; the runtime prefers it)"

    def _subcommand(self, *argv: str) -> str:
        # stdin is inherited: `decaenv fetch` may ask to accept a licence or for a password (never echoed).
        proc = subprocess.run([self.python, "-m", "decaenv", *argv])
        if proc.returncode != 0:
            raise RuntimeError(f"`decaenv {' '.join(argv)}` exited with status {proc.returncode}")
        return f"ran decaenv {' '.join(argv)}"

    def _build_rasterizer(self, action: FixAction) -> str:
        return self._subcommand("build")

    def _fetch(self, action: FixAction) -> str:
        return self._subcommand("--data-dir", str(self.data_dir), "fetch", *action.args.get("ids", []))

    def _pip_install(self, action: FixAction) -> str:
        from decaenv.offline import ENV_OFFLINE, is_offline

        if is_offline():
            raise RuntimeError(
                f"{ENV_OFFLINE}=1: not running `pip install {' '.join(self._pip_args(action))}` "
                f"(it would use the network); unset {ENV_OFFLINE} or install it yourself"
            )
        argv = [self.python, "-m", "pip", "install"] + self._pip_args(action)
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(argv)}` exited with status {proc.returncode}")
        return f"installed {' '.join(self._pip_args(action))}"


def extension_roots_of(report: Report) -> List[str]:
    """The extension cache roots the report looked at (for `allowed_roots`)."""
    result = report.results.get("extension-cache")
    root = result.data.get("root") if result is not None else None
    roots = [str(root)] if root else []
    env_root = os.environ.get("TORCH_EXTENSIONS_DIR")
    return roots + ([env_root] if env_root else [])


__all__ = ["Fixer", "FixOutcome", "plan", "is_removable", "extension_roots_of"]

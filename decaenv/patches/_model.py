"""What a shim is (data plus a version predicate) and what it needs to know about the environment.

A `Patch` is one row of data: an id, the reason with its upstream link, the package it concerns, the
versions of that package that need it (`Needs`: bounds parsed once with `packaging.version` when the shim module
is imported), and an `apply(patcher, config)` function that makes every change through the `Patcher`.
`Environment` looks installed versions up once and parses them once; tests and `decaenv patches list --assume`
hand it faked versions.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Mapping, Optional, Tuple

from packaging.version import InvalidVersion, Version

from decaenv.errors import UsageError

log = logging.getLogger("decaenv")

ENV_TRUSTED = "DECAENV_TRUSTED_SHA256"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Target:
    """The package a shim concerns.

    Attributes:
        dist: distribution name for version lookup ("numpy", "scikit-image"; "python" for the interpreter).
        module: import name; in `decaenv exec` children the shim is applied right after this module is
            imported (None: at interpreter start-up).
    """

    dist: str
    module: Optional[str]


@dataclass(frozen=True)
class PatchConfig:
    """Settings some shims read.

    Attributes:
        trusted_sha256: sha256 digests (lower-case hex) of checkpoints the user trusts: `torch.load` of a file
            with one of these digests runs with `weights_only=False` (see `decaenv.patches.torch_load`).
    """

    trusted_sha256: FrozenSet[str] = frozenset()

    def __post_init__(self) -> None:
        digests = frozenset(d.strip().lower() for d in self.trusted_sha256)
        bad = sorted(d for d in digests if not _SHA256.match(d))
        if bad:
            raise UsageError(f"not a sha256 digest: {bad[0]!r}", hint="give 64 hexadecimal characters")
        object.__setattr__(self, "trusted_sha256", digests)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "PatchConfig":
        """The config a `decaenv exec` child receives through its environment."""
        raw = environ.get(ENV_TRUSTED, "")
        return cls(trusted_sha256=frozenset(d for d in raw.split(",") if d.strip()))

    def to_env(self) -> Dict[str, str]:
        """Environment variables that carry this config to a child process."""
        return {ENV_TRUSTED: ",".join(sorted(self.trusted_sha256))} if self.trusted_sha256 else {}


class Environment:
    """Installed versions (as `packaging.version.Version`), each looked up and parsed once.

    Args:
        assume: faked versions by distribution name ("numpy": "1.26.4"; None = not installed), used instead
            of the real ones (tests, `decaenv patches list --assume`).
    """

    def __init__(self, assume: Optional[Mapping[str, Optional[str]]] = None):
        self._assume = {k.lower(): v for k, v in (assume or {}).items()}
        self._cache: Dict[str, Optional[Version]] = {}

    def version(self, target: Target) -> Optional[Version]:
        """The installed version of `target` (None when it is not installed)."""
        key = target.dist.lower()
        if key not in self._cache:
            self._cache[key] = _parse(self._lookup(target))
        return self._cache[key]

    def _lookup(self, target: Target) -> Optional[str]:
        key = target.dist.lower()
        if key in self._assume:
            return self._assume[key]
        if key == "python":
            return "%d.%d.%d" % sys.version_info[:3]
        top = (target.module or "").split(".")[0]
        loaded = [sys.modules[m] for m in (target.module, top) if m and m in sys.modules]
        for module in loaded:
            if isinstance(getattr(module, "__version__", None), str):
                return module.__version__  # what is really loaded wins over metadata
        if top and not loaded and not _importable(top):
            return None  # cheap: no metadata scan for what cannot be imported anyway
        return _distribution_version(target.dist, imported=bool(loaded))


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _distribution_version(dist: str, imported: bool = False) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "0" if imported else None  # importable without metadata (a source checkout): version unknown


def _parse(text: Optional[str]) -> Optional[Version]:
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        match = re.match(r"\d+(\.\d+)*", text)
        return Version(match.group(0)) if match else Version("0")


@dataclass(frozen=True)
class Needs:
    """The versions of a package that need a shim: `minimum <= version < below` (open bounds when None)."""

    minimum: Optional[Version] = None
    below: Optional[Version] = None

    def __contains__(self, version: Version) -> bool:
        return (self.minimum is None or version >= self.minimum) and (self.below is None or version < self.below)

    def __str__(self) -> str:
        parts = ([f">={self.minimum}"] if self.minimum else []) + ([f"<{self.below}"] if self.below else [])
        return ",".join(parts) or "any version"


def versions(minimum: Optional[str] = None, below: Optional[str] = None) -> Needs:
    """`Needs` with its bounds parsed once, where the shim is defined (no bounds: every version)."""
    return Needs(Version(minimum) if minimum else None, Version(below) if below else None)


@dataclass(frozen=True)
class Patch:
    """One compatibility shim.

    Attributes:
        id: stable kebab-case id ("numpy-aliases").
        title: one line saying what it does.
        reason: why it exists (the breakage, with versions).
        link: upstream issue, PR or changelog that documents the breakage.
        target: the package concerned.
        needed_for: versions of `target` that need the shim (parsed once, at import of the shim module).
        apply: `apply(patcher, config)` makes the changes, every one through `patcher`.
        when_absent: the shim is needed when `target` is NOT installed (and `needed_for` is ignored).
    """

    id: str
    title: str
    reason: str
    link: str
    target: Target
    needed_for: Needs
    apply: Callable[..., None] = field(repr=False)
    when_absent: bool = False

    def needed(self, env: Environment) -> Tuple[bool, str]:
        """(needed?, why) for the versions in `env`."""
        version = env.version(self.target)
        name = self.target.dist
        if self.when_absent:
            return (
                version is None,
                f"{name} is not installed" if version is None else f"{name} {version} is installed",
            )
        if version is None:
            return False, f"{name} is not installed"
        if version in self.needed_for:
            return True, f"{name} {version}"
        return False, f"{name} {version} (needed for {name} {self.needed_for})"

"""What a shim is (data plus a version predicate) and what it needs to know about the environment.

A `Patch` is one row of data: an id, the reason with its upstream link, the package it concerns, the
versions of that package that need it (a `packaging` specifier, parsed once when the shim module is
imported), and an `apply(patcher, config)` function that makes every change through the `Patcher`.
`Environment` looks installed versions up once and parses them once; tests and `decaenv patches list --assume`
hand it faked versions.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Mapping, Optional, Tuple

from packaging.specifiers import SpecifierSet
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
            return platform.python_version()
        module = sys.modules.get(target.module or "")
        if module is not None and isinstance(getattr(module, "__version__", None), str):
            return module.__version__  # what is really loaded wins over metadata
        return _distribution_version(target)


def _distribution_version(target: Target) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(target.dist)
    except metadata.PackageNotFoundError:
        pass
    top = (target.module or "").split(".")[0]
    if not top:
        return None
    if top in sys.modules:
        return "0"  # imported but without metadata: version unknown
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    return "0" if found else None  # "0": importable without metadata (a source checkout on PYTHONPATH)


def _parse(text: Optional[str]) -> Optional[Version]:
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        match = re.match(r"\d+(\.\d+)*", text)
        return Version(match.group(0)) if match else Version("0")


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
    needed_for: SpecifierSet
    apply: Callable[..., None] = field(repr=False)
    when_absent: bool = False

    def needed(self, env: Environment) -> Tuple[bool, str]:
        """(needed?, why) for the versions in `env`."""
        version = env.version(self.target)
        name = self.target.dist
        if self.when_absent:
            return (version is None,
                    f"{name} is not installed" if version is None else f"{name} {version} is installed")
        if version is None:
            return False, f"{name} is not installed"
        if self.needed_for.contains(version, prereleases=True):
            return True, f"{name} {version}"
        return False, f"{name} {version} (needed for {name} {self.needed_for})"


def spec(text: str) -> SpecifierSet:
    """A SpecifierSet, parsed once where the shim is defined ("" = every version)."""
    return SpecifierSet(text)

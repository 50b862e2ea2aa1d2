"""Where a manifest entry lives and whether it applies here: torch hub's checkpoint folder (resolved without
importing torch) and PEP 508 requirements checked against installed package metadata (nothing imported)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

__all__ = ["requirement_met", "torch_hub_checkpoints"]


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoint folder, resolved as `torch.hub.get_dir()` does without importing torch:
    `$TORCH_HOME/hub/checkpoints`, else `$XDG_CACHE_HOME/torch/hub/checkpoints`, else
    `~/.cache/torch/hub/checkpoints`."""
    home = os.environ.get("TORCH_HOME")
    if not home:
        home = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def requirement_met(requirement: str) -> Optional[bool]:
    """Whether the installed distribution satisfies a PEP 508 requirement ("face-alignment>=1.5"); None when
    that distribution is not installed. Read from package metadata: nothing is imported."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.version import InvalidVersion, Version

    req = Requirement(requirement)
    try:
        installed = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return None
    try:
        return req.specifier.contains(Version(installed), prereleases=True)
    except InvalidVersion:
        return False

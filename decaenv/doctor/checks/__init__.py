"""The doctor's checks, one module per category; importing this package registers them all in `REGISTRY`.

Modules are imported explicitly (no discovery), in display order of their categories.
"""

from __future__ import annotations

from decaenv.doctor.checks import (  # noqa: F401 - imported for their registrations
    system,
    python_pkgs,
    torch_checks,
    toolchain,
    extension,
    data,
    compat,
    checkout,
)
from decaenv.doctor.registry import REGISTRY

REGISTRY.validate()

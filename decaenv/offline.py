"""`DECAENV_OFFLINE=1` (like huggingface_hub's `HF_HUB_OFFLINE`): decaenv never touches the network.

Every place that could download checks `is_offline()`: `decaenv fetch` (as if `--offline` were given: present
files are still verified, a missing one is an error naming the file and how to import it), the HTTP session
factory (a last guard for library callers), `doctor --fix` (no pip installs), and the child processes of
`decaenv exec` / `selftest`, which inherit the variable.
"""

from __future__ import annotations

import os

ENV_OFFLINE = "DECAENV_OFFLINE"


def is_offline() -> bool:
    """True when `DECAENV_OFFLINE` is set to something other than empty/0/false/no."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no")

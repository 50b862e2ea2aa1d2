"""Start-up of a `decaenv exec` child process (called by the generated `sitecustomize`).

The parent passes its choices through the environment: which shims (`DECAENV_EXEC_SHIMS`: "auto" or a
comma-separated list of ids), which to leave out (`DECAENV_EXEC_SKIP`), whether to report
(`DECAENV_EXEC_VERBOSE=1`) and the trusted checkpoint digests (`DECAENV_TRUSTED_SHA256`). Each selected shim is
applied right after its target module is imported (at start-up when it has none), if the versions found in
this interpreter need it. A shim that fails prints one line and leaves the program running unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from types import ModuleType
from typing import Callable, List, Mapping, Optional

from decaenv.patches import registry
from decaenv.patches._manager import apply
from decaenv.patches._model import Environment, Patch, PatchConfig
from decaenv.patches.hooks import PostImportHooks

ENV_SHIMS = "DECAENV_EXEC_SHIMS"
ENV_SKIP = "DECAENV_EXEC_SKIP"
ENV_VERBOSE = "DECAENV_EXEC_VERBOSE"
AUTO = "auto"

log = logging.getLogger("decaenv")


def _split(value: str) -> List[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def selected(environ: Mapping[str, str]) -> List[Patch]:
    """The shims the parent asked for, in registry order (unknown ids are ignored here; the parent checks)."""
    wanted = environ.get(ENV_SHIMS, AUTO).strip() or AUTO
    ids = set(registry.ids()) if wanted == AUTO else set(_split(wanted))
    ids -= set(_split(environ.get(ENV_SKIP, "")))
    return [p for p in registry.PATCHES if p.id in ids]


def _say(text: str) -> None:
    sys.stderr.write(f"decaenv exec: {text}\n")
    sys.stderr.flush()


#: Names the log handler `_configure_logging` adds (so a second call adds none).
_HANDLER_NAME = "decaenv-exec"


def _configure_logging(verbose: bool) -> None:
    logger = logging.getLogger("decaenv")
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("decaenv exec: %(message)s"))
        handler.set_name(_HANDLER_NAME)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


def _applier(patch: Patch, config: PatchConfig, verbose: bool) -> Callable[[ModuleType], None]:
    """A post-import callback applying `patch` (bound now, not at call time)."""

    def apply(_module: ModuleType) -> None:
        apply_one(patch, config, verbose)

    return apply


def apply_one(patch: Patch, config: PatchConfig, verbose: bool) -> bool:
    """Apply one shim if this interpreter needs it; report and swallow any failure. True when applied."""
    try:
        env = Environment()
        needed, why = patch.needed(env)
        if not needed:
            if verbose:
                _say(f"{patch.id} not needed ({why})")
            return False
        applied = apply(patch.id, config=config, env=env)
        if verbose and applied:
            _say(f"{patch.id} applied ({why})")
        return bool(applied)
    except Exception as exc:  # noqa: BLE001 - a broken shim must never break the user's program
        _say(f"shim {patch.id} could not be applied ({type(exc).__name__}: {' '.join(str(exc).split())})")
        return False


def bootstrap(environ: Optional[Mapping[str, str]] = None) -> PostImportHooks:
    """Arrange for the selected shims to be applied in this process; returns the installed hooks."""
    environ = os.environ if environ is None else environ
    verbose = environ.get(ENV_VERBOSE, "") == "1"
    _configure_logging(verbose)
    config = PatchConfig.from_env(environ)
    hooks = PostImportHooks()
    for patch in selected(environ):
        trigger = None if patch.when_absent else patch.target.module
        if trigger is None:
            apply_one(patch, config, verbose)
        else:
            hooks.register(trigger, _applier(patch, config, verbose))
    if hooks.pending:
        hooks.install()
        if verbose:
            _say(f"will apply the other shims when their module is imported ({', '.join(hooks.pending)})")
    return hooks


def print_status_json(assume: Optional[Mapping[str, Optional[str]]] = None) -> None:
    """Print `registry.status_all()` of this interpreter as JSON (for `decaenv patches list --python`)."""
    statuses = registry.status_all(Environment(assume))
    payload = {"python": sys.executable, "version": sys.version.split()[0], "shims": [s.to_json() for s in statuses]}
    sys.stdout.write(json.dumps(payload) + "\n")

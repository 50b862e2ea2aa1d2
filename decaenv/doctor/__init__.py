"""`decaenv doctor`: real probes of this machine with a verdict, a cause and a fix per check.

Layout: `model` (statuses, results), `registry` (checks by id), `checks/` (one module per category),
`context`/`probe` (what checks may ask of the machine), `worker`/`sessions`/`probes_*` (heavy probes in
subprocesses with time budgets), `runner` (scheduling, cache, crash isolation), `cache` (environment
fingerprint), `verdict`, `formats` (JSON, Markdown), `fix` (`--fix`), `api` (entry points, and
`check_registry()`, the one public way to the registered checks). The terminal table, the spinner and the
exit code belong to the CLI (`decaenv.cli._doctor_run`, `decaenv.cli._doctor_render`).

This package imports nothing heavy at import time (the probe worker runs in its own process).
"""

from __future__ import annotations

__all__ = ["run_doctor", "selftest_gate", "check_registry", "DoctorOptions", "DoctorRun"]


def __getattr__(name):
    if name in __all__:
        from decaenv.doctor import api

        return getattr(api, name)
    raise AttributeError(name)

"""What every check receives: the probe façade, the resolved data dir, options, and earlier results."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from decaenv.doctor.model import CheckResult


@dataclass
class Context:
    """The world as a check sees it.

    Attributes:
        probe: a `SystemProbe` (the real machine) or a `FakeProbe` (tests).
        data_dir: the DECA data dir checked by the `data` category. data_dir_source: "flag", "env",
            "cwd" or "default" (see `decaenv.paths`).
        no_build: `--no-build`: the build probe is skipped.
        deca_dir: the user's DECA checkout (`--deca-dir`, or the one the doctor runs in), None outside one.
        results: results of the checks finished so far (requirements are always finished first).
    """

    probe: Any
    data_dir: Path
    data_dir_source: str = "default"
    no_build: bool = False
    deca_dir: Optional[Path] = None
    results: Dict[str, CheckResult] = field(default_factory=dict)
    _memo: Dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False)

    def section(self, name: str) -> Dict[str, Any]:
        """Shortcut for `probe.section(name)`."""
        return self.probe.section(name)

    def result(self, check_id: str) -> Optional[CheckResult]:
        """The result of an earlier check (None when it was not run)."""
        return self.results.get(check_id)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute a shared fact once per run (e.g. the resolved CUDA toolkit), whichever check asks first."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        value = compute()
        with self._lock:
            return self._memo.setdefault(key, value)

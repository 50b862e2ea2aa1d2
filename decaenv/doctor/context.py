"""What every check receives: the probe façade, the resolved data dir, options, and earlier results."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Literal, Optional, overload

from decaenv.doctor.contracts import (
    BuildSection,
    CheckpointLoadSection,
    ChumpySection,
    CompatSection,
    CudaSection,
    DecaImportsSection,
    DetectorsSection,
    FaceAlignmentSection,
    FlameLoadSection,
    FlameSelftestSection,
    NumpySection,
    Pytorch3dSection,
    RasterizerSection,
    RuntimePackagesSection,
    TorchLoadSection,
    TorchSection,
)
from decaenv.doctor.model import CheckResult
from decaenv.paths import DataDir


@dataclass
class Context:
    """The world as a check sees it.

    Attributes:
        probe: a `SystemProbe` (the real machine) or a `FakeProbe` (tests).
        data_dir: the DECA data dir checked by the `data` category, resolved once, with where it came from
            (`data_dir.source`: "flag", "env", "cwd" or "default"; see `decaenv.paths`).
        no_build: `--no-build`: the build probe is skipped.
        deca_dir: the user's DECA checkout (`--deca-dir`, or the one the doctor runs in), None outside one.
        results: results of the checks finished so far (requirements are always finished first).
    """

    probe: Any
    data_dir: DataDir
    no_build: bool = False
    deca_dir: Optional[Path] = None
    results: Dict[str, CheckResult] = field(default_factory=dict)
    _memo: Dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False)

    # The answer of each probe section, typed by its contract (`decaenv.doctor.contracts`).
    @overload
    def section(self, name: Literal["torch"]) -> TorchSection: ...
    @overload
    def section(self, name: Literal["cuda"]) -> CudaSection: ...
    @overload
    def section(self, name: Literal["torch-load"]) -> TorchLoadSection: ...
    @overload
    def section(self, name: Literal["rasterizer"]) -> RasterizerSection: ...
    @overload
    def section(self, name: Literal["pytorch3d"]) -> Pytorch3dSection: ...
    @overload
    def section(self, name: Literal["face-alignment"]) -> FaceAlignmentSection: ...
    @overload
    def section(self, name: Literal["detectors"]) -> DetectorsSection: ...
    @overload
    def section(self, name: Literal["deca-imports"]) -> DecaImportsSection: ...
    @overload
    def section(self, name: Literal["checkpoint-load"]) -> CheckpointLoadSection: ...
    @overload
    def section(self, name: Literal["numpy"]) -> NumpySection: ...
    @overload
    def section(self, name: Literal["flame-selftest"]) -> FlameSelftestSection: ...
    @overload
    def section(self, name: Literal["flame-load"]) -> FlameLoadSection: ...
    @overload
    def section(self, name: Literal["runtime-packages"]) -> RuntimePackagesSection: ...
    @overload
    def section(self, name: Literal["compat"]) -> CompatSection: ...
    @overload
    def section(self, name: Literal["chumpy"]) -> ChumpySection: ...
    @overload
    def section(self, name: Literal["build"]) -> BuildSection: ...

    def section(self, name: str) -> Any:
        """Shortcut for `probe.section(name)`: the answer of a probe section, shaped as its contract."""
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

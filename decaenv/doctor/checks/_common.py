"""Facts several checks share, computed once per run through `Context.memo`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from decaenv.doctor.context import Context
from decaenv.doctor.toolchain_facts import (
    CudaResolution,
    host_config_max_gcc,
    max_gcc_for_cuda,
    parse_nvcc_version,
    resolve_cuda,
    torch_build_from_file,
)


def torch_build(ctx: Context) -> Dict[str, Any]:
    """torch's version/cuda/hip read from its `version.py` without importing it ({} when not installed)."""
    return ctx.memo("torch-build", lambda: torch_build_from_file(ctx.probe.package_file("torch", "version.py")))


def cuda_torch(ctx: Context) -> bool:
    """True when the installed torch is a CUDA build (read from its files, no import)."""
    return bool(torch_build(ctx).get("cuda"))


@dataclass
class NvccFacts:
    """The CUDA toolkit a build would use: resolution, nvcc's version and its gcc limit."""

    resolution: CudaResolution
    version: Optional[Tuple[int, int]]
    version_output: str
    max_gcc: Optional[int]
    max_gcc_source: str


def nvcc_facts(ctx: Context) -> NvccFacts:
    """Resolve the toolkit and ask its nvcc for its version (may raise ProbeTimeout)."""

    def compute() -> NvccFacts:
        probe = ctx.probe
        system = probe.platform().system
        res = resolve_cuda(
            probe.environ, probe.which("nvcc"), default_roots=probe.cuda_default_roots(), is_windows=system == "Windows"
        )
        version, output = None, ""
        if res.nvcc:
            outcome = probe.run([res.nvcc, "--version"])
            output = outcome.output if outcome.returncode == 0 else (outcome.error or outcome.output)
            version = parse_nvcc_version(output) if outcome.returncode == 0 else None
        roots = [(res.root or "").strip().strip(":;")]
        if res.nvcc:
            roots += [os.path.dirname(os.path.dirname(os.path.realpath(res.nvcc)))] + list(probe.cuda_default_roots())
        header = host_config_max_gcc(roots, version) if res.nvcc and version else None
        max_gcc: Optional[int] = header
        if header is not None:
            source = "the toolkit's crt/host_config.h"
        else:
            max_gcc = max_gcc_for_cuda(version) if version else None
            source = "decaenv's CUDA/gcc table"
        return NvccFacts(res, version, output, max_gcc, source)

    return ctx.memo("nvcc", compute)


def version_str(version) -> str:
    """(12, 2, 0) → "12.2.0"."""
    return ".".join(str(v) for v in version) if version else "?"


def python_cmd(ctx: Context) -> str:
    """The probed interpreter (for `<python> -m pip ...` commands)."""
    return ctx.probe.python

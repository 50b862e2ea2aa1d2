"""What the hardware offers for `--precision bf16`, without importing torch (the doctor uses it too)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence, Set, Tuple


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> Set[str]:
    """The CPU feature flags (Linux /proc/cpuinfo), empty when unknown."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_verdict(
    flags: Iterable[str], gpu_capabilities: Sequence[Tuple[int, int]] = (), gpu_names: Optional[Sequence[str]] = None
) -> Tuple[bool, str]:
    """(bf16 is fast here, one line why): CUDA GPUs of compute capability >= 8.0 (tensor cores), else the
    CPU's AMX-BF16 / AVX512-BF16 flags."""
    if gpu_capabilities:
        names = list(gpu_names or [f"GPU {i}" for i in range(len(gpu_capabilities))])
        good = [n for n, c in zip(names, gpu_capabilities) if tuple(c) >= (8, 0)]
        if good:
            return True, f"{', '.join(good)}: bf16 tensor cores (compute capability >= 8.0)"
        return False, f"{', '.join(names)}: no bf16 tensor cores (compute capability < 8.0); keep fp32"
    flags = set(flags)
    if "amx_bf16" in flags:
        return True, "CPU has AMX-BF16 (bf16 matrix tiles): bf16 is several times faster than fp32"
    if "avx512_bf16" in flags:
        return True, "CPU has AVX512-BF16 (no AMX): bf16 is faster than fp32, by less than with AMX"
    if not flags:
        return False, "CPU flags unknown (no /proc/cpuinfo): bf16 may be emulated; keep fp32 unless measured"
    return False, "CPU has neither AVX512-BF16 nor AMX: bf16 is emulated and slower than fp32; keep fp32"

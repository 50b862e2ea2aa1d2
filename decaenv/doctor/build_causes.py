"""Map a failed extension build's log to its first real error and a named cause (with the fix).

Build logs end with the least useful line (`ninja: build stopped: subcommand failed.`); users search for
that. The cause is in the first compiler error, often hundreds of lines earlier. Order matters: the first
pattern found in the log (by position) wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple


@dataclass(frozen=True)
class BuildCause:
    """A known reason a C++/CUDA extension build fails.

    Attributes:
        id: stable id ("cxx-standard", "gcc-too-new", ...). pattern: regex over the build log.
        cause: one-line explanation. fix: what to do. fm: failure-mode ids.
    """

    id: str
    pattern: str
    cause: str
    fix: str
    fm: Tuple[str, ...] = ()


CAUSES: Tuple[BuildCause, ...] = (
    BuildCause("cxx-standard",
               r"C\+\+(?:17|20) or later compatible compiler is required|You need C\+\+17|"
               r"requires at least C\+\+ ?17|#error C\+\+\d+ or later",
               "the compiler was asked for an older C++ standard than torch's headers need (e.g. -std=c++14)",
               "pass no -std flag (torch picks its own) and use a compiler supporting C++20 (gcc >= 10)",
               ("FM04",)),
    BuildCause("gcc-too-new", r"unsupported GNU version|gcc versions later than \d+ are not supported",
               "the host gcc is newer than this CUDA toolkit accepts",
               "install an older gcc and `export CC=gcc-N CXX=g++-N`, or a CUDA toolkit matching torch",
               ("FM03",)),
    BuildCause("ccbin-empty", r"Failed to preprocess host compiler properties",
               "nvcc got no usable host compiler (DECA's `-ccbin=$(which gcc-7)` expands to nothing)",
               "drop the -ccbin flag, or point it at an installed gcc", ("FM02",)),
    BuildCause("aten-api", r"DeprecatedTypeProperties|no suitable conversion function from .{0,80}c10::ScalarType",
               "the source uses an ATen API this torch removed (`.type()` in AT_DISPATCH)",
               "use `.scalar_type()` (decaenv's sources do; a stale copy of DECA's do not)", ("FM05",)),
    BuildCause("cuda-home-unset", r"CUDA_HOME environment variable is not set",
               "CUDA sources need a CUDA build of torch and a toolkit (CUDA_HOME is always None on a CPU torch)",
               "on a CPU torch build only the CPU extension; with CUDA torch export CUDA_HOME=/usr/local/cuda-X.Y",
               ("FM07",)),
    BuildCause("cuda-mismatch", r"detected CUDA version \([\d.]+\) mismatches the version that was used to compile",
               "nvcc's CUDA major version differs from the one torch was built with",
               "install the toolkit matching torch.version.cuda and point CUDA_HOME at it", ("FM07",)),
    BuildCause("gpu-arch", r"Unsupported gpu architecture '?compute_\d+",
               "this nvcc is too old for the GPU architecture requested (TORCH_CUDA_ARCH_LIST or the GPU)",
               "use a newer CUDA toolkit, or set TORCH_CUDA_ARCH_LIST to architectures it supports", ("FM10",)),
    BuildCause("ninja-missing", r"Ninja is required to load C\+\+ extensions",
               "torch's JIT builds need ninja", "python -m pip install ninja (and have the venv's bin on PATH)",
               ("FM01",)),
    BuildCause("msvc-missing",
               r"'where', 'cl'|Error checking compiler version for cl|cl\.exe\b.*(not found|not recognized)",
               "no MSVC compiler (cl.exe) on PATH", "install Visual Studio Build Tools (C++) and build from an "
               "'x64 Native Tools' prompt, or use the pure-torch rasterizer", ("FM08",)),
    BuildCause("python-headers", r"Python\.h: No such file or directory",
               "the Python development headers are not installed",
               "install them (Debian/Ubuntu: `sudo apt install python3-dev` for your Python version)", ("FM01",)),
    BuildCause("cuda-headers", r"(cuda_runtime(_api)?\.h|cuda\.h): No such file or directory",
               "the CUDA headers are not where CUDA_HOME points", "export CUDA_HOME=<toolkit root with include/>",
               ("FM07",)),
    BuildCause("compiler-missing", r"(?:\bc\+\+|g\+\+|\bgcc|\bcc): (?:command )?not found|"
               r"No such file or directory: '(?:c\+\+|g\+\+|gcc)'|error trying to exec '(?:cc1plus|cc1)'",
               "no working C++ compiler", "install one (Debian/Ubuntu: `sudo apt install g++`)", ("FM01",)),
    BuildCause("out-of-memory", r"internal compiler error: Killed|virtual memory exhausted|Killed signal terminated",
               "the compiler ran out of memory", "build with fewer parallel jobs: MAX_JOBS=1", ("FM01",)),
    BuildCause("no-space", r"No space left on device", "the disk is full", "free disk space", ()),
    BuildCause("permission", r"Permission denied", "a build or cache folder is not writable",
               "set TORCH_EXTENSIONS_DIR to a writable folder", ("FM06",)),
    BuildCause("undefined-symbol", r"undefined symbol: \S+",
               "a compiled module was built against another torch (or another C++ ABI)",
               "rebuild it against the installed torch (delete the old build first)", ("FM01", "FM26")),
    BuildCause("missing-header", r"fatal error: [\w/.+-]+\.h(?:pp)?: No such file or directory",
               "a header is missing", "install the package that provides it", ("FM01",)),
)

_ERROR_LINE = re.compile(r"(^|\s)(fatal error|error|#error|nvcc fatal)\b|Error building extension|Error:|"
                         r"error:", re.I)


@dataclass(frozen=True)
class Diagnosis:
    """The outcome of `diagnose`: the first error line of the log and the matching cause (if known)."""

    first_error: Optional[str]
    cause: Optional[BuildCause]


def first_error_line(log: str) -> Optional[str]:
    """The first line that looks like a compiler/build error (whitespace-folded, at most 300 chars)."""
    for line in log.splitlines():
        if _ERROR_LINE.search(line) and "warning" not in line.lower().split("error")[0]:
            return " ".join(line.split())[:300]
    return None


def diagnose(log: str) -> Diagnosis:
    """Find the known cause on the earliest log line (the more specific cause wins within a line) and the
    first error line (the cause's own line when no line looks like an error)."""
    best: Optional[Tuple[int, int, BuildCause, int]] = None
    for order, cause in enumerate(CAUSES):
        match = re.search(cause.pattern, log)
        if match:
            line = log.count("\n", 0, match.start())
            if best is None or (line, order) < (best[0], best[1]):
                best = (line, order, cause, match.start())
    first = first_error_line(log)
    if best is not None and first is None:
        start = log.rfind("\n", 0, best[3]) + 1
        end = log.find("\n", best[3])
        first = " ".join(log[start:end if end >= 0 else None].split())[:300]
    return Diagnosis(first, best[2] if best else None)


def causes_table() -> List[dict]:
    """All known causes as data (for docs and `--list-checks --json`)."""
    return [{"id": c.id, "cause": c.cause, "fix": c.fix, "fm": list(c.fm)} for c in CAUSES]

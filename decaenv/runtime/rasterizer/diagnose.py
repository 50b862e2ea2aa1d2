"""Map the output of a failed extension build to its cause and fix (used by `decaenv build` and the doctor).

Pure text processing: no torch, no compiler. `diagnose_build_output(text)` finds the first error line
of a build log (compiler, nvcc, ninja, linker or Python) and matches it, and the rest of the log, against
the known causes below (the rasterizer failures FM01-FM10 of DECA users).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple


@dataclass(frozen=True)
class Diagnosis:
    """A build failure explained.

    Attributes:
        cause_id: stable id ("cxx-standard", "gcc-too-new", ...; "unknown" when nothing matched).
        cause: what is wrong, one sentence.
        fix: what to do, one sentence.
        first_error: the first error line of the log ("" when none was found).
        failure_mode: the matching entry of decaenv's failure catalogue (FM01-FM11), if any.
    """

    cause_id: str
    cause: str
    fix: str
    first_error: str = ""
    failure_mode: Optional[str] = None

    def one_line(self) -> str:
        where = f": {self.first_error}" if self.first_error else ""
        return f"{self.cause}{where} — {self.fix}"


# (id, patterns, cause, fix, failure mode); the first entry whose pattern occurs in the log wins.
_CAUSES: Sequence[Tuple[str, Sequence[str], str, str, Optional[str]]] = (
    ("no-ninja", (r"Ninja is required to load C\+\+ extensions", r"ninja: (command )?not found",
                  r"No such file or directory: 'ninja'"),
     "the ninja build tool is missing", "pip install ninja (or install your system's ninja-build package)",
     "FM01"),
    ("cpu-torch", (r"(?!)",),  # never matched in a log: chosen by `diagnose_build_output(torch_has_cuda=False)`
     "this torch is a CPU-only build, so it cannot build or run CUDA code (CUDA_HOME is ignored)",
     "build the CPU extension with `decaenv build --cpu`, or install a CUDA build of torch", "FM07"),
    ("cuda-home-unset", (r"CUDA_HOME environment variable is not set",),
     "the CUDA toolkit (nvcc) was not found: CUDA_HOME is not set",
     "install a CUDA toolkit whose major version matches torch.version.cuda and export "
     "CUDA_HOME=/usr/local/cuda-X.Y", "FM07"),
    ("cuda-mismatch", (r"The detected CUDA version \(.*\) mismatches the version that was used to compile",),
     "the CUDA toolkit does not match the CUDA version torch was built with",
     "install the toolkit matching torch.version.cuda and point CUDA_HOME at it", "FM07"),
    ("ccbin", (r"Failed to preprocess host compiler properties",),
     "nvcc was given a host compiler it cannot run (e.g. an empty -ccbin from `$(which gcc-7)`)",
     "drop the -ccbin flag or point NVCC_CCBIN at an installed, supported gcc", "FM02"),
    ("gcc-too-new", (r"unsupported GNU version", r"unsupported clang version"),
     "the host compiler is newer than this nvcc supports",
     "install a gcc this CUDA toolkit supports and set CC/CXX (or NVCC_CCBIN) to it, or use a newer "
     "CUDA toolkit", "FM03"),
    ("cxx-standard", (r"You need C\+\+1[47] to compile PyTorch", r"C\+\+(1[47]|20) or later compatible compiler",
                      r"requires at least C\+\+ ?1[47]", r"#error.*C\+\+ ?(1[47]|20)"),
     "the C++ standard flag is older than this torch requires",
     "pass no -std flag (torch chooses it) or use a compiler that supports the required standard", "FM04"),
    ("aten-api", (r"DeprecatedTypeProperties", r"has no member named 'data'", r"\.type\(\).*scalar_type"),
     "the source uses an ATen API that this torch removed (e.g. .type() in AT_DISPATCH, .data<T>())",
     "use .scalar_type() and .data_ptr<T>() (decaenv's own sources already do)", "FM05"),
    ("python-headers", (r"Python\.h: No such file or directory",),
     "the Python development headers are missing",
     "install them (e.g. apt install python3-dev, or the python3.X-dev package of your interpreter)", None),
    ("cuda-headers", (r"cuda_runtime(_api)?\.h: No such file or directory",),
     "the CUDA headers were not found", "install the full CUDA toolkit and set CUDA_HOME", "FM07"),
    ("gpu-arch", (r"Unsupported gpu architecture '?(compute|sm)_\d+", r"no kernel image is available"),
     "nvcc cannot target this GPU architecture (toolkit too old for the GPU, or a wrong TORCH_CUDA_ARCH_LIST)",
     "use a CUDA toolkit/torch pair that supports the GPU, or set TORCH_CUDA_ARCH_LIST to supported "
     "architectures", "FM10"),
    ("no-compiler", (r"No such file or directory: '(c\+\+|g\+\+|clang\+\+|cl)'", r"(c\+\+|g\+\+|cl): (command )?not found",
                     r"Command '\['where', 'cl'\]' returned non-zero", r"Error checking compiler version",
                     r"CalledProcessError.*'(c\+\+|g\+\+)'", r"unable to execute '(c\+\+|g\+\+)'"),
     "no working C++ compiler was found",
     "install one (apt install g++, or Visual Studio Build Tools on Windows) or set CXX to it", "FM08"),
    ("out-of-memory", (r"internal compiler error: Killed", r"Killed signal terminated program",
                       r"virtual memory exhausted", r"cannot allocate memory"),
     "the compiler ran out of memory", "close other programs or set MAX_JOBS=1 and build again", None),
    ("disk-full", (r"No space left on device",), "the disk is full",
     "free space in the build dir (or set DECAENV_HOME to a roomier disk) and build again", None),
    ("link-library", (r"cannot find -l\w+",),
     "the linker could not find a library (e.g. -lcudart or -lc10_cuda: no CUDA libraries where expected)",
     "check that CUDA_HOME/lib64 exists and that torch is a CUDA build matching the toolkit", "FM07"),
    ("abi-mismatch", (r"undefined symbol", r"cannot open shared object file", r"PyInit_"),
     "the library does not match this torch (built by another torch, or a stale cache)",
     "rebuild with `decaenv build --force` in this environment", "FM06"),
    ("path-spaces", (r"ninja: error: .*(loading|build\.ninja).*", ),
     "ninja could not read its build file (often a build path with spaces or special characters)",
     "set DECAENV_HOME to a path without spaces and build again", "FM09"),
)

_STRONG_ERROR = re.compile(
    r"(#\s*error\b|\berror\b\s*[:(#]|\berror:\s|fatal error|nvcc fatal|\bfatal:|ninja: error|"
    r"undefined reference|undefined symbol|Killed signal|cannot find -l)", re.IGNORECASE)
_PLAIN_ERROR = re.compile(r"(No such file or directory|not found|No space left)")
_EXCEPTION = re.compile(r"\b\w*(Error|Exception): ")
_NOT_AN_ERROR = re.compile(r"(-Werror|error_prefix|\b0 errors?\b|warning:)", re.IGNORECASE)


def first_error_line(text: str) -> str:
    """The first line of `text` that reports an error, stripped (at most 300 characters), or "".

    Compiler-style errors ("error:", "#error", "fatal error", "nvcc fatal", linker errors) win over shell
    errors ("not found", "No such file or directory"), which win over Python exception lines (these
    mostly wrap the real error, printed before or after them).
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not _NOT_AN_ERROR.search(ln)]
    for pattern in (_STRONG_ERROR, _PLAIN_ERROR, _EXCEPTION):
        for line in lines:
            if pattern.search(line):
                return line[:300]
    return ""


def diagnose_build_output(text: str, *, torch_has_cuda: Optional[bool] = None) -> Diagnosis:
    """Explain a failed build from its full output (compiler log, ninja output, Python exception text).

    Args:
        text: everything the build printed, in order.
        torch_has_cuda: whether the torch that built is a CUDA build (None: unknown). A CPU torch ignores
            CUDA_HOME altogether, so "CUDA_HOME is not set" then means "this torch cannot build CUDA".

    Returns:
        The Diagnosis of the first known cause found (cause_id "unknown" when none matched).
    """
    first = first_error_line(text)
    for haystack in (first, text):
        for cause_id, patterns, cause, fix, mode in _CAUSES:
            if haystack and any(re.search(p, haystack) for p in patterns):
                if cause_id == "cuda-home-unset" and torch_has_cuda is False:
                    return diagnose("cpu-torch", first)
                return Diagnosis(cause_id, cause, fix, first, mode)
    return Diagnosis("unknown", "the build failed", "rerun `decaenv build -v` and read the compiler output above",
                     first, "FM01")


def diagnose(cause_id: str, detail: str = "") -> Diagnosis:
    """The Diagnosis of a known cause found without running a build (pre-flight checks)."""
    for known, _, cause, fix, mode in _CAUSES:
        if known == cause_id:
            return Diagnosis(known, cause, fix, detail, mode)
    raise KeyError(cause_id)

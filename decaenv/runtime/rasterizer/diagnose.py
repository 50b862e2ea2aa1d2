"""Map the output of a failed extension build to its cause and fix: the one classifier of decaenv
(`decaenv build`, the doctor's `rasterizer-build` check and the troubleshooting table all use it).

Pure text processing: no torch, no compiler. `diagnose_build_output(text)` finds the first error line
of a build log (compiler, nvcc, ninja, linker or Python) and names the known cause (the rasterizer
failures FM01-FM10 of DECA users): the cause matching that first error line, else the cause found on the
earliest line of the log. Build logs end with the least useful line (`ninja: build stopped: subcommand
failed.`); the cause is in the first compiler error, often hundreds of lines earlier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
class Cause:
    """A known reason an extension build fails.

    Attributes:
        id: stable id ("cxx-standard", "gcc-too-new", ...), the same in `decaenv build` and the doctor.
        patterns: regexes over the build log (any one matches).
        cause: what is wrong, one sentence. fix: what to do, one sentence.
        failure_mode: the matching entry of decaenv's failure catalogue (FM01-FM11), if any.
    """

    id: str
    patterns: Tuple[str, ...]
    cause: str
    fix: str
    failure_mode: Optional[str] = None


@dataclass(frozen=True)
class Diagnosis:
    """A build failure explained.

    Attributes:
        cause_id: a `Cause.id`; "unknown" when nothing matched ("timeout" and "wrong-results" come from
            the builder itself).
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


_Q = "['‘’\"]"  # gcc quotes with ' or ‘’ (locale), nvcc with "

# Within one line the earlier entry wins, so specific causes come before general ones.
CAUSES: Tuple[Cause, ...] = (
    Cause("no-ninja", (r"Ninja is required to load C\+\+ extensions", r"ninja: (command )?not found",
                       r"No such file or directory: 'ninja'"),
          "the ninja build tool is missing", "pip install ninja (or install your system's ninja-build package)",
          "FM01"),
    Cause("cpu-torch", (r"(?!)",),  # never in a log: chosen by `diagnose_build_output(torch_has_cuda=False)`
          "this torch is a CPU-only build, so it cannot build or run CUDA code (CUDA_HOME is ignored)",
          "build the CPU extension with `decaenv build --cpu`, or install a CUDA build of torch", "FM07"),
    Cause("cuda-home-unset", (r"CUDA_HOME environment variable is not set",),
          "the CUDA toolkit (nvcc) was not found: CUDA_HOME is not set",
          "install a CUDA toolkit whose major version matches torch.version.cuda and export "
          "CUDA_HOME=/usr/local/cuda-X.Y", "FM07"),
    Cause("cuda-mismatch", (r"detected CUDA version \(.*\) mismatches the version that was used to compile",),
          "the CUDA toolkit does not match the CUDA version torch was built with",
          "install the toolkit matching torch.version.cuda and point CUDA_HOME at it", "FM07"),
    Cause("ccbin", (r"Failed to preprocess host compiler properties",),
          "nvcc was given a host compiler it cannot run (e.g. an empty -ccbin from DECA's `$(which gcc-7)`)",
          "drop the -ccbin flag or point NVCC_CCBIN at an installed, supported gcc", "FM02"),
    Cause("gcc-too-new", (r"unsupported GNU version", r"unsupported clang version",
                          r"gcc versions later than \d+ are not supported"),
          "the host compiler is newer than this nvcc supports",
          "install a gcc this CUDA toolkit supports and set CC/CXX (or NVCC_CCBIN) to it, or use a newer "
          "CUDA toolkit", "FM03"),
    Cause("cxx-standard", (r"You need C\+\+1[47] to compile PyTorch", r"C\+\+(1[47]|20) or later compatible compiler",
                           r"requires at least C\+\+ ?1[47]", r"#error.*C\+\+ ?(1[47]|20)",
                           # C++17 library names used by torch's headers, missing under -std=c++14:
                           rf"{_Q}\w+_v{_Q} is not a member of {_Q}std{_Q}",
                           rf"namespace {_Q}std{_Q} has no member {_Q}\w+_v{_Q}",
                           rf"{_Q}(optional|string_view|variant){_Q} in namespace {_Q}std{_Q} does not name"),
          "the C++ standard flag is older than this torch requires (e.g. a -std=c++14 in the build's flags)",
          "pass no -std flag (torch chooses it) or use a compiler that supports the required standard", "FM04"),
    Cause("aten-api", (r"DeprecatedTypeProperties\W{0,3} to \W{0,3}c10::ScalarType", rf"has no member named {_Q}data{_Q}",
                       r"\.type\(\).*scalar_type", r"no suitable conversion function from .{0,80}c10::ScalarType"),
          "the source uses an ATen API that this torch removed (e.g. .type() in AT_DISPATCH, .data<T>())",
          "use .scalar_type() and .data_ptr<T>() (decaenv's own sources already do)", "FM05"),
    Cause("python-headers", (r"Python\.h: No such file or directory",),
          "the Python development headers are missing",
          "install them (e.g. apt install python3-dev, or the python3.X-dev package of your interpreter)", None),
    Cause("cuda-headers", (r"(cuda_runtime(_api)?\.h|cuda\.h): No such file or directory",),
          "the CUDA headers were not found", "install the full CUDA toolkit and set CUDA_HOME", "FM07"),
    Cause("gpu-arch", (r"Unsupported gpu architecture '?(compute|sm)_\d+", r"no kernel image is available"),
          "nvcc cannot target this GPU architecture (toolkit too old for the GPU, or a wrong TORCH_CUDA_ARCH_LIST)",
          "use a CUDA toolkit/torch pair that supports the GPU, or set TORCH_CUDA_ARCH_LIST to supported "
          "architectures", "FM10"),
    Cause("msvc-missing", (r"Command '\['where', 'cl'\]' returned non-zero", r"Error checking compiler version for cl\b",
                           r"cl\.exe\b.*(not found|not recognized)"),
          "no MSVC compiler (cl.exe) on PATH",
          "install Visual Studio Build Tools (C++) and build from an 'x64 Native Tools' prompt, or use the "
          "pure-torch rasterizer", "FM08"),
    Cause("no-compiler", (r"No such file or directory: '(c\+\+|g\+\+|gcc|clang\+\+|cl)'",
                          r"(\bc\+\+|g\+\+|\bgcc|\bcc|\bcl): (command )?not found", r"Error checking compiler version",
                          r"CalledProcessError.*'(c\+\+|g\+\+)'", r"unable to execute '(c\+\+|g\+\+)'",
                          r"error trying to exec '(cc1plus|cc1)'"),
          "no working C++ compiler was found",
          "install one (apt install g++, or Visual Studio Build Tools on Windows) or set CXX to it", "FM08"),
    Cause("out-of-memory", (r"internal compiler error: Killed", r"Killed signal terminated program",
                            r"virtual memory exhausted", r"cannot allocate memory"),
          "the compiler ran out of memory", "close other programs or set MAX_JOBS=1 and build again", None),
    Cause("disk-full", (r"No space left on device",), "the disk is full",
          "free space in the build dir (or set DECAENV_HOME to a roomier disk) and build again", None),
    Cause("link-library", (r"cannot find -l\w+",),
          "the linker could not find a library (e.g. -lcudart or -lc10_cuda: no CUDA libraries where expected)",
          "check that CUDA_HOME/lib64 exists and that torch is a CUDA build matching the toolkit", "FM07"),
    Cause("abi-mismatch", (r"undefined symbol", r"cannot open shared object file", r"PyInit_"),
          "the library does not match this torch (built by another torch or C++ ABI, or a stale cache)",
          "rebuild with `decaenv build --force` in this environment", "FM06"),
    Cause("permission", (r"Permission denied",), "a build or cache folder is not writable",
          "set TORCH_EXTENSIONS_DIR (or DECAENV_HOME) to a writable folder", "FM06"),
    Cause("path-spaces", (r"ninja: error: .*(loading|build\.ninja).*",),
          "ninja could not read its build file (often a build path with spaces or special characters)",
          "set DECAENV_HOME to a path without spaces and build again", "FM09"),
    Cause("missing-header", (r"fatal error: [\w/.+-]+\.h(pp)?: No such file or directory",),
          "a header is missing", "install the package that provides it", "FM01"),
)
_BY_ID: Dict[str, Cause] = {c.id: c for c in CAUSES}

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


def _matching_cause(text: str) -> Optional[Cause]:
    """The cause found on the earliest line of `text` (the earlier entry of CAUSES within a line)."""
    best: Optional[Tuple[int, int, Cause]] = None
    for order, cause in enumerate(CAUSES):
        starts = [m.start() for m in (re.search(p, text) for p in cause.patterns) if m]
        if starts:
            line = text.count("\n", 0, min(starts))
            if best is None or (line, order) < best[:2]:
                best = (line, order, cause)
    return best[2] if best else None


def diagnose_build_output(text: str, *, torch_has_cuda: Optional[bool] = None) -> Diagnosis:
    """Explain a failed build from its full output (compiler log, ninja output, Python exception text).

    Args:
        text: everything the build printed, in order.
        torch_has_cuda: whether the torch that built is a CUDA build (None: unknown). A CPU torch ignores
            CUDA_HOME altogether, so "CUDA_HOME is not set" then means "this torch cannot build CUDA".

    Returns:
        The Diagnosis of the cause of the first error line, else of the earliest known cause in the log
        (cause_id "unknown" when none matched).
    """
    first = first_error_line(text)
    found = (_matching_cause(first) if first else None) or _matching_cause(text)
    if found is None:
        return Diagnosis("unknown", "the build failed",
                         "rerun `decaenv build -v` and read the compiler output above", first, "FM01")
    if found.id == "cuda-home-unset" and torch_has_cuda is False:
        found = _BY_ID["cpu-torch"]
    return Diagnosis(found.id, found.cause, found.fix, first, found.failure_mode)


def diagnose(cause_id: str, detail: str = "") -> Diagnosis:
    """The Diagnosis of a known cause found without running a build (pre-flight checks)."""
    cause = _BY_ID[cause_id]
    return Diagnosis(cause.id, cause.cause, cause.fix, detail, cause.failure_mode)


def causes_table() -> List[dict]:
    """All known causes as data (for docs and `decaenv doctor --list-checks --json`)."""
    return [{"id": c.id, "cause": c.cause, "fix": c.fix, "fm": [c.failure_mode] if c.failure_mode else []}
            for c in CAUSES]

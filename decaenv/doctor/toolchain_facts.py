"""Facts about CUDA toolkits and host compilers: version parsing, nvcc's gcc limits, how the toolkit resolves.

Pure functions over strings and paths (no subprocess here): checks feed them what the probe returned.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

Version = Tuple[int, ...]

#: Newest gcc major each CUDA release's `crt/host_config.h` accepts (`#if __GNUC__ > N` → `#error -- unsupported
#: GNU version!`). From NVIDIA's installation guides and torch's `CUDA_GCC_VERSIONS`; a release not listed uses
#: the closest earlier one of the same major. The installed header, when found, wins over this table.
CUDA_MAX_GCC: Tuple[Tuple[Tuple[int, int], int], ...] = (
    ((9, 0), 6),
    ((9, 1), 6),
    ((9, 2), 7),
    ((10, 0), 7),
    ((10, 1), 8),
    ((10, 2), 8),
    ((11, 0), 9),
    ((11, 1), 10),
    ((11, 2), 10),
    ((11, 3), 10),
    ((11, 4), 11),
    ((11, 5), 11),
    ((11, 6), 11),
    ((11, 7), 11),
    ((11, 8), 11),
    ((12, 0), 12),
    ((12, 1), 12),
    ((12, 2), 12),
    ((12, 3), 13),
    ((12, 4), 13),
    ((12, 5), 13),
    ((12, 6), 13),
    ((12, 8), 14),
    ((12, 9), 14),
    ((13, 0), 15),
)

_NUMBER = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_nvcc_version(output: str) -> Optional[Tuple[int, int]]:
    """`Cuda compilation tools, release 11.8, V11.8.89` → (11, 8)."""
    match = re.search(r"release\s+(\d+)\.(\d+)", output)
    if match:
        return int(match.group(1)), int(match.group(2))
    match = re.search(r"\bV(\d+)\.(\d+)\.\d+", output)
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_compiler_version(output: str) -> Tuple[str, Optional[Version]]:
    """The compiler family and version from `--version` output.

    `gcc (Debian 12.2.0-14) 12.2.0` → ("gcc", (12, 2, 0)); `clang version 16.0.6` → ("clang", (16, 0, 6));
    `Apple clang version 15.0.0` → ("clang", ...); MSVC's banner `Version 19.38.33133` → ("msvc", ...).
    """
    lines = [line for line in output.strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    lowered = first.lower()
    family = "clang" if "clang" in lowered else "msvc" if "microsoft" in lowered or "msvc" in lowered else "gcc"
    matches = list(_NUMBER.finditer(first))
    if not matches:
        return family, None
    m = matches[0] if family in ("clang", "msvc") else matches[-1]
    return family, tuple(int(g) for g in m.groups() if g is not None)


def parse_version_text(text: str) -> Optional[Version]:
    """The first dotted number in a string: "2.13.0+cpu" → (2, 13, 0)."""
    match = _NUMBER.search(text or "")
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def max_gcc_for_cuda(cuda: Tuple[int, int]) -> Optional[int]:
    """Newest gcc major nvcc of that CUDA release accepts, from `CUDA_MAX_GCC` (None when unknown)."""
    best = None
    for (major, minor), gcc in CUDA_MAX_GCC:
        if major == cuda[0] and minor <= cuda[1]:
            best = gcc
    return best


def _header_version(root: str) -> Optional[Tuple[int, int]]:
    """CUDA_VERSION from a toolkit's cuda.h (e.g. 12010 → (12, 1))."""
    paths = [os.path.join(root, "include", "cuda.h")]
    paths += glob.glob(os.path.join(root, "targets", "*", "include", "cuda.h"))
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        match = re.search(r"#define\s+CUDA_VERSION\s+(\d+)", text)
        if match:
            value = int(match.group(1))
            return value // 1000, (value % 1000) // 10
    return None


def host_config_max_gcc(roots, version: Optional[Tuple[int, int]] = None) -> Optional[int]:
    """The gcc limit written in a toolkit's own `crt/host_config.h` (None when no header is found).

    Args:
        roots: candidate toolkit roots, in order (a str or a list). version: nvcc's (major, minor); a root
            whose cuda.h names another version is ignored (it belongs to a different toolkit).
    """
    for root in [roots] if isinstance(roots, str) else list(roots):
        if not root or (version and _header_version(root) not in (None, tuple(version))):
            continue
        candidates = [os.path.join(root, "include", "crt", "host_config.h")]
        candidates += glob.glob(os.path.join(root, "targets", "*", "include", "crt", "host_config.h"))
        for path in candidates:
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            marker = text.find("unsupported GNU version")
            if marker < 0:
                continue
            found = re.findall(r"__GNUC__\s*>\s*(\d+)", text[:marker])
            if found:
                return int(found[-1])
    return None


@dataclass
class CudaResolution:
    """Which CUDA toolkit a torch extension build would use, and how it was found.

    Attributes:
        root: the toolkit root (torch's CUDA_HOME) or None. source: "CUDA_HOME", "CUDA_PATH", "PATH",
        "/usr/local/cuda" or "none". nvcc: the nvcc a build runs (`root/bin/nvcc`), or the one on PATH.
        path_nvcc: nvcc found on PATH. problems: malformed or inconsistent settings, one line each.
    """

    root: Optional[str]
    source: str
    nvcc: Optional[str]
    path_nvcc: Optional[str]
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def env_value_problems(name: str, value: str) -> List[str]:
    """Why an environment variable that must hold ONE folder is malformed (empty list when fine)."""
    problems = []
    stripped = value.strip()
    if stripped != value:
        problems.append(f"{name} has leading/trailing spaces: {value!r}")
    if stripped[:1] in (":", ";") or stripped[-1:] in (":", ";"):
        problems.append(
            f"{name}={value!r} starts or ends with a path separator, as if it were built like PATH "
            f"(`{name}=${name}:/usr/local/cuda`); builds then run '{stripped}/bin/nvcc' and "
            f"`-isystem {stripped}/include`"
        )
    elif os.pathsep in stripped:
        problems.append(f"{name}={value!r} holds several paths; it must name one CUDA toolkit folder")
    if stripped.startswith(("'", '"')) or stripped.endswith(("'", '"')):
        problems.append(f"{name}={value!r} contains quote characters")
    if os.path.basename(stripped.rstrip("/\\")) in ("bin", "nvcc", "nvcc.exe"):
        problems.append(f"{name}={value!r} points at the bin folder or nvcc itself; it must be the toolkit root")
    return problems


def resolve_cuda(
    environ: dict,
    which_nvcc: Optional[str],
    default_roots: Tuple[str, ...] = ("/usr/local/cuda",),
    is_windows: bool = False,
) -> CudaResolution:
    """Resolve the toolkit the way `torch.utils.cpp_extension` does: CUDA_HOME, CUDA_PATH, nvcc on PATH,
    then the default location; and collect what is wrong with the settings on the way."""
    problems: List[str] = []
    notes: List[str] = []
    exe = "nvcc.exe" if is_windows else "nvcc"
    root, source = None, "none"
    for name in ("CUDA_HOME", "CUDA_PATH"):
        value = environ.get(name)
        if value:
            problems += env_value_problems(name, value)
            root, source = value, name
            break
    if root is None and which_nvcc:
        root, source = os.path.dirname(os.path.dirname(which_nvcc)), "PATH"
    if root is None:
        for candidate in default_roots:
            if os.path.isdir(candidate):
                root, source = candidate, candidate
                break
    nvcc = None
    if root is not None:
        clean = root.strip().strip("'\"").strip(os.pathsep)
        candidate = os.path.join(clean, "bin", exe)
        if os.path.exists(candidate):
            nvcc = candidate
        elif source in ("CUDA_HOME", "CUDA_PATH"):
            problems.append(
                f"{source}={root} has no bin/{exe}" + ("" if os.path.isdir(clean) else " (the folder does not exist)")
            )
        if nvcc and not _has_cuda_headers(clean):
            notes.append(
                f"{clean} has no include/cuda_runtime.h: a torch CUDA build taking it as CUDA_HOME "
                "would not find the CUDA headers (nvcc there may be a wrapper script)"
            )
    if which_nvcc and nvcc and source in ("CUDA_HOME", "CUDA_PATH"):
        path_root = os.path.dirname(os.path.dirname(which_nvcc))
        if os.path.realpath(path_root) != os.path.realpath((root or "").strip()):
            notes.append(f"nvcc on PATH ({which_nvcc}) is not the one in {source} ({nvcc}); builds use {source}'s")
    return CudaResolution(root, source, nvcc or which_nvcc, which_nvcc, problems, notes)


def _has_cuda_headers(root: str) -> bool:
    if os.path.isfile(os.path.join(root, "include", "cuda_runtime.h")):
        return True
    return bool(glob.glob(os.path.join(root, "targets", "*", "include", "cuda_runtime.h")))


def torch_build_from_file(version_py: Optional[str]) -> dict:
    """Read torch's version, CUDA and HIP from its `version.py` without importing torch (cheap; used to key
    caches and to locate the extension cache). Empty dict when the file is missing or unreadable."""
    if not version_py:
        return {}
    try:
        text = Path(version_py).read_text(encoding="utf-8")
    except OSError:
        return {}
    out = {}
    for key in ("__version__", "cuda", "hip"):
        match = re.search(rf"^{key}\s*(?::[^=]*)?=\s*(?:'([^']*)'|\"([^\"]*)\"|None)", text, re.M)
        if match:
            out[key.strip("_")] = match.group(1) or match.group(2) or None
    return out

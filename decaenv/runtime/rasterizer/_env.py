"""Where builds of the extension live and what they are keyed by (shared by the builder and the loader).

Layout of one build root (default `decaenv.paths.build_dir()`):
    <root>/<key>/                    key = Python, torch, CUDA and machine, e.g. py3.11-torch2.13.0_cpu-cpu-x86_64
        decaenv_rasterizer_cpu.so    published libraries (atomically replaced)
        decaenv_rasterizer_cuda.so   (also holds the CPU kernels)
        cpu.json, cuda.json          build records: versions, source digest, verification, seconds
        build.lock                   held while a build runs (pid, host, start time)
        last-error.json              the last failed build: diagnosis and log path
        work-cpu/, work-cuda/        ninja build folders (sources copied to work-*/src)

The loader looks in, in order: every folder of `$DECAENV_EXT_PATH` (os.pathsep-separated build roots, for
prebuilt libraries), the `prebuilt/` folder of this package (wheels that ship the library), the build dir.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from decaenv.paths import build_dir

ENV_EXT_PATH = "DECAENV_EXT_PATH"
VARIANTS = ("cpu", "cuda")
CSRC_SUFFIXES = (".cpp", ".cu", ".h", ".cuh")


def csrc_dir() -> Path:
    """The C++/CUDA sources shipped with decaenv (`decaenv/runtime/csrc`)."""
    return Path(__file__).resolve().parent.parent / "csrc"


def prebuilt_dir() -> Path:
    """Build root inside the installed package, for wheels that ship a prebuilt library."""
    return Path(__file__).resolve().parent / "prebuilt"


def source_files() -> List[Path]:
    """Every C++/CUDA source and header, sorted."""
    return sorted(p for p in csrc_dir().rglob("*") if p.suffix in CSRC_SUFFIXES and p.is_file())


def translation_units(variant: str) -> List[str]:
    """Sources compiled for a variant, relative to csrc (the CUDA variant also holds the CPU kernels)."""
    renderer = ["rasterize_cpu.cpp", "interpolate_cpu.cpp", "vertex_normals_cpu.cpp", "shade_cpu.cpp"]
    inputs = [
        "warp_cpu.cpp",
        "png_cpu.cpp",
        "summed_area_cpu.cpp",
        "max_pool_cpu.cpp",
        "box_means_cpu.cpp",
        "nms_cpu.cpp",
    ]
    cpu = renderer + inputs
    units = ["ext.cpp"] + [f"cpu/{name}" for name in cpu]
    return units + ["cuda/rasterize_cuda.cu"] if variant == "cuda" else units


def source_digest() -> str:
    """16 hex digits identifying the sources: a build from other sources is never loaded."""
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(path.relative_to(csrc_dir()).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def library_name(variant: str) -> str:
    return f"decaenv_rasterizer_{variant}"


def library_file(variant: str) -> str:
    return library_name(variant) + (".pyd" if os.name == "nt" else ".so")


@dataclass(frozen=True)
class EnvKey:
    """What a compiled library depends on.

    Attributes:
        python: "3.11"; torch: torch.__version__; cuda: torch.version.cuda or None; machine: "x86_64".
    """

    python: str
    torch: str
    cuda: Optional[str]
    machine: str

    @property
    def name(self) -> str:
        torch_tag = self.torch.replace("+", "_")
        cuda_tag = f"cu{self.cuda}" if self.cuda else "cpu"
        return f"py{self.python}-torch{torch_tag}-{cuda_tag}-{self.machine}"


def env_key() -> EnvKey:
    """The key of the running interpreter and torch (imports torch)."""
    import torch

    return EnvKey(
        python=f"{sys.version_info[0]}.{sys.version_info[1]}",
        torch=torch.__version__,
        cuda=torch.version.cuda,
        machine=platform.machine().lower() or "unknown",
    )


def search_roots() -> List[Path]:
    """Build roots the loader searches, in order (see the module docstring)."""
    roots = [Path(p).expanduser() for p in os.environ.get(ENV_EXT_PATH, "").split(os.pathsep) if p.strip()]
    return roots + [prebuilt_dir(), build_dir()]

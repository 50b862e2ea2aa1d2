"""Child process of `decaenv build`: compile one variant with torch's cpp_extension, then check it.

Run as `python -m decaenv.runtime.rasterizer._worker '<json job>'`. Isolating the build in a child lets
the parent capture every line of compiler output (for the diagnosis), enforce a timeout, kill the whole
compiler process group on Ctrl-C, and keep half-built libraries out of its own process. The last line
printed is `DECAENV_BUILD_RESULT {json}`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, TypedDict

RESULT_MARKER = "DECAENV_BUILD_RESULT "


def host_flags(digest: str, cuda: bool) -> dict:
    """Compiler and linker flags: optimise, no FP contraction (bit-exact results), OpenMP like torch."""
    import torch

    define = [f"-DDECAENV_SOURCE_DIGEST={digest}"] + (["-DWITH_CUDA"] if cuda else [])
    if os.name == "nt":
        return {"cflags": ["/O2", "/fp:precise"] + define + (["/openmp"] if torch._C.has_openmp else []), "ldflags": []}
    openmp = torch._C.has_openmp and sys.platform.startswith("linux")
    return {
        "cflags": ["-O3", "-ffp-contract=off"] + define + (["-fopenmp"] if openmp else []),
        "ldflags": ["-fopenmp"] if openmp else [],
    }


def nvcc_flags(digest: str) -> List[str]:
    """nvcc flags: no -std (torch chooses), no -ccbin, and no fused multiply-add (bit-exact results)."""
    return ["-O3", "--fmad=false", f"-DDECAENV_SOURCE_DIGEST={digest}", "-DWITH_CUDA"]


def default_arch_list() -> Optional[str]:
    """TORCH_CUDA_ARCH_LIST for a machine without a visible GPU: torch's own targets that nvcc supports.

    None leaves torch's default (the visible GPUs' architectures, or the user's TORCH_CUDA_ARCH_LIST).
    """
    import torch
    from torch.utils import cpp_extension

    if os.environ.get("TORCH_CUDA_ARCH_LIST") or torch.cuda.is_available() or not cpp_extension.CUDA_HOME:
        return None
    try:
        listed = subprocess.run(
            [os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc"), "--list-gpu-arch"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    supported = {m.group(1) for m in re.finditer(r"compute_(\d+)", listed)}
    wanted = [a[3:] for a in torch.cuda.get_arch_list() if a.startswith("sm_") and a[3:] in supported]
    if not wanted:
        return None
    archs = [f"{a[:-1]}.{a[-1]}" for a in wanted]
    return ";".join(archs[:-1] + [archs[-1] + "+PTX"])


def compile_variant(job: dict) -> str:
    """Build the library of `job` into job['work']; returns the library path."""
    from torch.utils import cpp_extension

    cuda = job["variant"] == "cuda"
    flags = host_flags(job["digest"], cuda)
    if cuda:
        arch = default_arch_list()
        if arch:
            os.environ["TORCH_CUDA_ARCH_LIST"] = arch
            print(f"decaenv: TORCH_CUDA_ARCH_LIST={arch} (no GPU visible: torch's targets)", flush=True)
    src = Path(job["work"]) / "src"
    cpp_extension.load(
        name=job["name"],
        sources=[str(src / s) for s in job["sources"]],
        extra_cflags=flags["cflags"],
        extra_cuda_cflags=nvcc_flags(job["digest"]) if cuda else None,
        extra_ldflags=flags["ldflags"],
        build_directory=job["work"],
        with_cuda=cuda,
        is_python_module=False,
        verbose=True,
    )
    return str(Path(job["work"]) / job["library_file"])


class DeviceCheck(TypedDict):
    """One device's comparison with the reference rasterizer (`identical` None: not run)."""

    device: str
    identical: Optional[bool]
    detail: str


class Verification(TypedDict):
    """`verify_loaded`'s report, sent to the parent as JSON (`VariantResult.verification`)."""

    ok: bool
    checks: List[DeviceCheck]
    build_info: str


def verify_loaded(cuda: bool) -> Verification:
    """Compare the freshly loaded op with the reference on random meshes (CPU, and CUDA when visible)."""
    import torch

    from decaenv.runtime.rasterizer.verify import check_against_reference

    ok, checks = True, []
    devices = ["cpu"] + (["cuda"] if cuda and torch.cuda.is_available() else [])
    for device in devices:
        diff = check_against_reference(torch.ops.decaenv.rasterize, device=device)
        checks.append(DeviceCheck(device=device, identical=diff.identical, detail=diff.describe()))
        ok = ok and diff.within(1e-5)
    if cuda and "cuda" not in devices:
        checks.append(
            DeviceCheck(device="cuda", identical=None, detail="not run: no CUDA device visible (compiled only)")
        )
    return Verification(ok=ok, checks=checks, build_info=str(torch.ops.decaenv._build_info()))


def main(argv: List[str]) -> int:
    job = json.loads(argv[0])
    result: Dict[str, Any] = {"ok": False, "stage": "compile"}  # sent to the parent as JSON
    start = time.monotonic()
    try:
        result["library"] = compile_variant(job)
        result["compile_seconds"] = round(time.monotonic() - start, 2)
        result["stage"] = "verify"
        result["verification"] = verify_loaded(job["variant"] == "cuda")
        result["ok"] = result["verification"]["ok"]
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which diagnoses it
        print(f"{type(exc).__name__}: {exc}", flush=True)
        result["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:2000]}"
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

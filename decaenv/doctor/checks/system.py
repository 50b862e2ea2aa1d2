"""Checks of the `platform` category: operating system and Python interpreter."""

from __future__ import annotations

from decaenv.doctor.context import Context
from decaenv.doctor.model import CheckResult, fail, fix_it, ok, warn
from decaenv.doctor.registry import check

MIN_PYTHON = (3, 9)
TESTED_PYTHON = (3, 13)

WINDOWS_NOTES = (
    "works on Windows: decaenv doctor, fetch and reconstruct on the CPU (pure-torch rasterizer), and on an "
    "NVIDIA GPU with a CUDA build of torch (pure-torch rasterizer on the GPU)",
    "needs Visual Studio Build Tools (cl.exe, 'x64 Native Tools' prompt): `decaenv build` of the C++/CUDA "
    "rasterizer extension",
    "does not work on Windows: DECA's own standard_rasterize_cuda JIT build (bash-only flags); use decaenv's "
    "rasterizer or WSL2",
)


@check(
    "os",
    title="Operating system",
    category="platform",
    fm=("FM08", "FM39"),
    symptoms=(
        "Command '['where', 'cl']' returned non-zero exit status 1",
        "ImportError: DLL load failed while importing standard_rasterize_cuda",
        "AssertionError: Torch not compiled with CUDA enabled",
    ),
    cause="DECA assumes Linux with an NVIDIA GPU: its rasterizer is a CUDA JIT build with bash-only flags.",
    fix="decaenv runs the CPU path everywhere; on Windows build the extension from an MSVC prompt or use WSL2.",
)
def check_os(ctx: Context) -> CheckResult:
    """The OS and what decaenv can do on it."""
    p = ctx.probe.platform()
    data = {"system": p.system, "release": p.release, "machine": p.machine, "distro": p.distro, "wsl": p.wsl}
    if p.system == "Linux":
        name = p.distro or f"Linux {p.release}"
        details = (
            ["WSL2: CUDA works through the Windows NVIDIA driver (install the driver on Windows, not inside WSL)"]
            if p.wsl
            else []
        )
        return ok(f"{name} ({p.machine}){', WSL' if p.wsl else ''}", details, data=data)
    if p.system == "Windows":
        return ok(
            f"Windows {p.release} ({p.machine}): the CPU path works; building the rasterizer "
            "extension needs MSVC (see details)",
            WINDOWS_NOTES,
            data=data,
        )
    if p.system == "Darwin":
        return ok(
            f"macOS {p.release} ({p.machine}): CPU path (PyTorch has no CUDA on macOS)",
            ["the C++ rasterizer extension builds with Apple clang (xcode-select --install)"],
            data=data,
        )
    return warn(
        f"{p.system} {p.release} ({p.machine}) is not a platform decaenv is tested on",
        ["PyTorch wheels exist for Linux, Windows and macOS"],
        data=data,
        remediation=fix_it("Use Linux, Windows or macOS; the CPU path may still work here."),
    )


@check(
    "python-version",
    title="Python interpreter",
    category="platform",
    fm=("FM14", "FM16"),
    cpu_blocker=True,
    symptoms=(
        "AttributeError: module 'inspect' has no attribute 'getargspec'",
        "No matching distribution found for torch==1.6.0",
    ),
    cause="DECA pins Python 3.7-era packages; chumpy 0.70 breaks on Python >= 3.11.",
    fix="Use Python 3.9-3.13 with decaenv; it needs neither chumpy nor DECA's pins.",
)
def check_python(ctx: Context) -> CheckResult:
    """Python version against decaenv's supported range, and against chumpy."""
    p = ctx.probe.platform()
    version = tuple(p.python_version[:2])
    data = {"version": p.python, "implementation": p.implementation, "executable": p.executable, "bits": p.bits}
    details = []
    if version >= (3, 11):
        details.append(
            "chumpy 0.70 cannot be imported on Python >= 3.11 (inspect.getargspec was removed); "
            "decaenv reads FLAME without chumpy, so this does not matter here"
        )
    if p.bits != 64:
        return fail(
            f"{p.implementation} {p.python} is a 32-bit interpreter; PyTorch needs 64-bit",
            details,
            data=data,
            remediation=fix_it("Install a 64-bit Python 3.9-3.13."),
        )
    if version < MIN_PYTHON:
        return fail(
            f"Python {p.python} is older than decaenv supports (>= 3.9)",
            details,
            data=data,
            remediation=fix_it(
                "Create an environment with Python 3.11 (recommended), install decaenv there.",
                "python3.11 -m venv .venv && .venv/bin/python -m pip install decaenv",
            ),
        )
    if p.implementation != "CPython":
        return warn(
            f"{p.implementation} {p.python}: PyTorch supports CPython only",
            details,
            data=data,
            remediation=fix_it("Use CPython 3.9-3.13."),
        )
    if version > TESTED_PYTHON:
        return warn(
            f"Python {p.python} is newer than decaenv is tested with (3.9-3.13); PyTorch wheels may "
            "not exist for it yet",
            details,
            data=data,
            remediation=fix_it("If torch does not install, use Python 3.11-3.13."),
        )
    return ok(f"{p.implementation} {p.python} ({p.executable})", details, data=data)

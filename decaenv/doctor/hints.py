"""Install and fix commands, spelled for the interpreter and platform being probed.

Every pip command runs `<python> -m pip` with the probed interpreter's full path: a bare `pip` may belong to
another Python (the classic "installed it but it is still missing").
"""

from __future__ import annotations

import shlex
from typing import List, Optional

PYTORCH_SELECTOR = "https://pytorch.org/get-started/locally/"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def quote(path: str) -> str:
    """Shell-quote a path for a command line shown to the user."""
    return shlex.quote(path) if path else "python"


def pip_install(python: str, *specs: str, extra: str = "") -> str:
    """`<python> -m pip install <specs>` (specs quoted)."""
    args = " ".join(shlex.quote(s) for s in specs)
    return f"{quote(python)} -m pip install {extra + ' ' if extra else ''}{args}"


def torch_install_args(system: str, has_nvidia: bool) -> List[str]:
    """`pip install` arguments for torch on this machine: the CPU wheel index unless an NVIDIA GPU is present
    (Linux/Windows), plain `torch` on macOS."""
    if system == "Darwin" or has_nvidia:
        return ["torch"]
    return ["torch", "--index-url", CPU_INDEX]


def torch_install(python: str, system: str, has_nvidia: bool) -> str:
    """The torch install command line for this machine (see `torch_install_args`)."""
    args = torch_install_args(system, has_nvidia)
    command = f"{quote(python)} -m pip install {' '.join(shlex.quote(a) for a in args)}"
    return command + (f"   # or pick the CUDA variant at {PYTORCH_SELECTOR}" if has_nvidia else "")


def compiler_install(system: str, distro_like: str = "") -> str:
    """How to get a C++ compiler on this platform."""
    if system == "Windows":
        return (
            "install 'Visual Studio Build Tools' with 'Desktop development with C++', then use an "
            "'x64 Native Tools' prompt"
        )
    if system == "Darwin":
        return "xcode-select --install"
    if "fedora" in distro_like or "rhel" in distro_like:
        return "sudo dnf install gcc-c++"
    return "sudo apt install g++"


def gcc_version_install(major: int, distro_like: str = "") -> str:
    """Install gcc/g++ of a given major version (Debian/Ubuntu names)."""
    if "fedora" in distro_like or "rhel" in distro_like:
        return f"sudo dnf install gcc-toolset-{major}"
    return f"sudo apt install gcc-{major} g++-{major}"


def python_dev_install(version: str, system: str) -> Optional[str]:
    """The package with Python.h for this interpreter (None where headers always ship)."""
    if system != "Linux":
        return None
    return f"sudo apt install python{version}-dev   # Fedora: sudo dnf install python{version}-devel"

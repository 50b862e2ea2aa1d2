"""Checks of the `toolchain` category: CUDA toolkit, nvcc vs torch, host gcc vs nvcc, C++ compiler, ninja,
Python headers. Tools run with a time budget through the probe; nothing is imported here."""

from __future__ import annotations

import os

from decaenv.doctor import hints
from decaenv.doctor.checks._common import cuda_torch, nvcc_facts, python_cmd, torch_build, version_str
from decaenv.doctor.context import Context
from decaenv.doctor.model import CheckResult, FixAction, fail, fix_it, ok, skip, warn
from decaenv.doctor.registry import check
from decaenv.doctor.toolchain_facts import parse_compiler_version, parse_version_text

TOOLCHAIN = ("toolchain", "env", "torchpkg")


def _severity(ctx: Context):
    """Problems that only matter for CUDA builds: FAIL with a CUDA torch, WARN otherwise."""
    return fail if cuda_torch(ctx) else warn


@check(
    "cuda-toolkit",
    title="CUDA toolkit (nvcc)",
    category="toolchain",
    cache=TOOLCHAIN,
    fm=("FM07",),
    symptoms=(
        "OSError: CUDA_HOME environment variable is not set. Please set it to your CUDA install root.",
        "-isystem :/usr/local/cuda-11.2/include",
        "nvcc: not found",
    ),
    cause="The toolkit is absent, or CUDA_HOME/CUDA_PATH is malformed (a leading ':' from PATH-style "
    "concatenation, several paths, the bin folder) or points elsewhere than the nvcc on PATH.",
    fix="export CUDA_HOME=/usr/local/cuda-X.Y (one folder, no separators) and PATH=$CUDA_HOME/bin:$PATH; only "
    "needed for the CUDA rasterizer.",
)
def check_cuda_toolkit(ctx: Context) -> CheckResult:
    """Which nvcc a torch extension build would use, how it was resolved, and whether the settings are sane."""
    facts = nvcc_facts(ctx)
    res = facts.resolution
    data = {
        "root": res.root,
        "source": res.source,
        "nvcc": res.nvcc,
        "path_nvcc": res.path_nvcc,
        "version": version_str(facts.version) if facts.version else None,
    }
    details = [
        f"resolved like torch.utils.cpp_extension: CUDA_HOME, CUDA_PATH, nvcc on PATH, /usr/local/cuda → {res.source}"
    ] + res.notes
    needed = cuda_torch(ctx)
    if res.problems:
        bad = _severity(ctx)
        return bad(
            res.problems[0],
            details + res.problems[1:],
            data=data,
            remediation=fix_it(
                "Point CUDA_HOME at exactly one toolkit root (or unset it).",
                "export CUDA_HOME=/usr/local/cuda   # the folder holding bin/nvcc and include/",
                'export PATH="$CUDA_HOME/bin:$PATH"',
            ),
        )
    if not res.nvcc:
        if needed:
            return warn(
                f"no CUDA toolkit found: the CUDA rasterizer cannot be built (torch is a CUDA "
                f"{torch_build(ctx).get('cuda')} build; the pure-torch rasterizer still runs on the GPU)",
                details,
                data=data,
                remediation=fix_it(
                    f"Install a CUDA {torch_build(ctx).get('cuda')} toolkit (e.g. conda's "
                    "cuda-nvcc, or NVIDIA's installer) and export CUDA_HOME.",
                    "export CUDA_HOME=/usr/local/cuda",
                ),
            )
        return ok("not installed — not needed with a CPU build of torch", details, data=data)  # or no torch
    if facts.version is None:
        return warn(
            f"{res.nvcc} does not report a version: {facts.version_output[:200]}",
            details,
            data=data,
            remediation=fix_it("Check that nvcc runs.", f"{res.nvcc} --version"),
        )
    usage = (
        ""
        if needed
        else (
            " (unused: torch is a CPU build, whose extensions never use CUDA_HOME)"
            if torch_build(ctx)
            else " (torch is not installed)"
        )
    )
    return ok(f"CUDA {version_str(facts.version)}: {res.nvcc} (via {res.source}){usage}", details, data=data)


@check(
    "nvcc-torch-match",
    title="nvcc vs torch CUDA",
    category="toolchain",
    requires=("cuda-toolkit",),
    cache=TOOLCHAIN,
    fm=("FM07",),
    symptoms=("The detected CUDA version (12.1) mismatches the version that was used to compile PyTorch (11.8)",),
    cause="torch refuses to build extensions when nvcc's major CUDA version differs from torch.version.cuda.",
    fix="Install the toolkit matching torch.version.cuda (or the torch matching the toolkit) and point "
    "CUDA_HOME at it.",
)
def check_nvcc_torch(ctx: Context) -> CheckResult:
    """nvcc's CUDA version against the one torch was built with (major must match)."""
    build = torch_build(ctx)
    facts = nvcc_facts(ctx)
    if not build.get("cuda"):
        return skip("torch is not a CUDA build" if build else "torch is not installed")
    if not facts.version:
        return skip("no nvcc")
    torch_cuda = parse_version_text(build["cuda"]) or (0,)
    nvcc = facts.version
    data = {"torch_cuda": build["cuda"], "nvcc": version_str(nvcc)}
    if torch_cuda[0] != nvcc[0]:
        return fail(
            f"nvcc is CUDA {version_str(nvcc)} but torch was built with CUDA {build['cuda']}: torch "
            "refuses to build extensions",
            data=data,
            remediation=fix_it(
                f"Install a CUDA {torch_cuda[0]}.x toolkit and point CUDA_HOME at it, or "
                f"install torch built for CUDA {nvcc[0]}.x.",
                f"export CUDA_HOME=/usr/local/cuda-{build['cuda']}",
            ),
        )
    if tuple(torch_cuda[:2]) != tuple(nvcc[:2]):
        return warn(
            f"nvcc CUDA {version_str(nvcc)} vs torch CUDA {build['cuda']}: same major, torch only warns",
            data=data,
            remediation=fix_it("Usually fine; match them exactly if a build misbehaves."),
        )
    return ok(f"nvcc CUDA {version_str(nvcc)} matches torch CUDA {build['cuda']}", data=data)


def _host_compiler(ctx: Context):
    env = ctx.probe.environ
    for name in ("NVCC_CCBIN", "CUDAHOSTCXX", "CC"):
        if env.get(name):
            return env[name], name
    return "gcc", "default (gcc on PATH)"


@check(
    "nvcc-host-compiler",
    title="gcc vs nvcc",
    category="toolchain",
    requires=("cuda-toolkit",),
    cache=TOOLCHAIN,
    fm=("FM02", "FM03"),
    symptoms=(
        "#error -- unsupported GNU version! gcc versions later than 11 are not supported!",
        "nvcc fatal : Failed to preprocess host compiler properties.",
    ),
    cause="Each CUDA release accepts gcc only up to a maximum major version (CUDA 11.8: 11, 12.1: 12, "
    "12.4: 13, 12.8: 14, 13.0: 15); DECA's -ccbin=$(which gcc-7) names a gcc that is rarely installed.",
    fix="Install a gcc the toolkit accepts and export CC=gcc-N CXX=g++-N (torch hands $CC to nvcc as -ccbin).",
)
def check_host_compiler(ctx: Context) -> CheckResult:
    """The host compiler nvcc will use against the newest gcc that nvcc accepts."""
    facts = nvcc_facts(ctx)
    if not facts.version:
        return skip("no nvcc")
    name, source = _host_compiler(ctx)
    path = name if os.path.isabs(name) else ctx.probe.which(name)
    if not path:
        return _severity(ctx)(
            f'host compiler {name!r} ({source}) not found: nvcc fails with "Failed to '
            'preprocess host compiler properties"',
            data={"compiler": name},
            remediation=fix_it(
                "Install gcc or point CC at one.",
                hints.compiler_install(ctx.probe.platform().system, ctx.probe.platform().distro_like),
            ),
        )
    outcome = ctx.probe.run([path, "--version"])
    family, version = parse_compiler_version(outcome.output)
    data = {
        "compiler": path,
        "family": family,
        "version": version_str(version),
        "nvcc": version_str(facts.version),
        "max_gcc": facts.max_gcc,
        "limit_from": facts.max_gcc_source,
    }
    details = [
        f"host compiler: {path} ({source})",
        f"CUDA {version_str(facts.version)} accepts gcc <= {facts.max_gcc} (from {facts.max_gcc_source})",
    ]
    if family != "gcc" or version is None:
        return ok(
            f"{family} {version_str(version)} as nvcc's host compiler (decaenv checks gcc limits only)",
            details,
            data=data,
        )
    if facts.max_gcc is None:
        return warn(
            f"gcc {version_str(version)}: decaenv does not know the gcc limit of CUDA {version_str(facts.version)}",
            details,
            data=data,
            remediation=fix_it("If the build fails with 'unsupported GNU version', install an older gcc."),
        )
    if version[0] > facts.max_gcc:
        need = facts.max_gcc
        where = "" if cuda_torch(ctx) else " (only matters for CUDA builds; torch here is not a CUDA build)"
        return _severity(ctx)(
            f"gcc {version_str(version)} is unsupported by CUDA {version_str(facts.version)} (newest allowed: gcc "
            f"{need}): nvcc stops with '#error -- unsupported GNU version!'{where}",
            details,
            data=data,
            remediation=fix_it(
                f"Install gcc {need} and hand it to nvcc.",
                hints.gcc_version_install(need, ctx.probe.platform().distro_like),
                f"export CC=gcc-{need} CXX=g++-{need}",
            ),
        )
    return ok(
        f"gcc {version_str(version)} is accepted by CUDA {version_str(facts.version)} (gcc <= {facts.max_gcc})",
        details,
        data=data,
    )


def _cxx_name(ctx: Context) -> str:
    if ctx.probe.platform().system == "Windows":
        return "cl"
    return ctx.probe.environ.get("CXX") or "c++"


@check(
    "cxx-compiler",
    title="C++ compiler",
    category="toolchain",
    cache=TOOLCHAIN,
    fm=("FM01", "FM04", "FM08"),
    symptoms=(
        "#error C++20 or later compatible compiler is required to use ATen.",
        "#error You need C++17 to compile PyTorch",
        "Command '['where', 'cl']' returned non-zero exit status 1",
    ),
    cause="Building the rasterizer extension needs the C++ compiler torch uses ($CXX or c++; cl.exe on "
    "Windows) with the C++ standard torch's headers require.",
    fix="Install g++ >= 10 (Linux), Xcode command line tools (macOS) or Visual Studio Build Tools (Windows).",
)
def check_cxx(ctx: Context) -> CheckResult:
    """The compiler torch's extension builds call, and whether it is new enough for torch's headers."""
    p = ctx.probe.platform()
    name = _cxx_name(ctx)
    path = name if os.path.isabs(name) else ctx.probe.which(name)
    install = hints.compiler_install(p.system, p.distro_like)
    if not path:
        return warn(
            f"no C++ compiler ({name!r}) on PATH: the rasterizer extension cannot be built; the pure-torch "
            "rasterizer is used",
            data={"compiler": name},
            remediation=fix_it("Install a C++ compiler (only needed for the faster compiled rasterizer).", install),
        )
    if p.system == "Windows":
        return ok(f"MSVC at {path}", data={"compiler": path, "family": "msvc"})
    outcome = ctx.probe.run([path, "--version"])
    family, version = parse_compiler_version(outcome.output)
    data = {"compiler": path, "family": family, "version": version_str(version)}
    torch_version = parse_version_text(torch_build(ctx).get("version") or "") or (0,)
    need = 10 if torch_version >= (2, 13) else 9 if torch_version >= (2, 1) else 5
    if family == "gcc" and version is not None and version[0] < need:
        return warn(
            f"{family} {version_str(version)} is too old for torch {version_str(torch_version)}'s headers "
            f"(needs gcc >= {need})",
            data=data,
            remediation=fix_it(
                f"Install gcc >= {need} and export CXX.",
                hints.gcc_version_install(need, p.distro_like),
                f"export CXX=g++-{need}",
            ),
        )
    return ok(f"{family} {version_str(version)} ({path})", data=data)


@check(
    "ninja",
    title="ninja",
    category="toolchain",
    cache=TOOLCHAIN,
    fm=("FM01",),
    symptoms=("RuntimeError: Ninja is required to load C++ extensions",),
    cause="torch's JIT extension builds run ninja from PATH.",
    fix="python -m pip install ninja, with the environment's bin folder on PATH.",
)
def check_ninja(ctx: Context) -> CheckResult:
    """ninja on PATH (and a hint when it is installed in the venv but the venv is not activated)."""
    path = ctx.probe.which("ninja")
    beside = os.path.join(os.path.dirname(python_cmd(ctx)), "ninja" + (".exe" if os.name == "nt" else ""))
    if not path:
        if os.path.exists(beside):
            return warn(
                f"ninja is installed at {beside} but not on PATH: torch will not find it",
                remediation=fix_it(
                    "Activate the environment (or put its bin folder on PATH).",
                    f'export PATH="{os.path.dirname(beside)}:$PATH"',
                ),
            )
        return warn(
            "ninja not found: the rasterizer extension cannot be JIT-built (pure-torch rasterizer is used)",
            remediation=fix_it("Install ninja.", hints.pip_install(python_cmd(ctx), "ninja")),
            fixes=(FixAction("pip-install", "install ninja", {"specs": ["ninja"]}, needs_yes=True),),
        )
    outcome = ctx.probe.run([path, "--version"])
    if outcome.returncode != 0:
        return warn(
            f"{path} does not run: {outcome.error or outcome.output[:200]}",
            remediation=fix_it(
                "Reinstall ninja.", hints.pip_install(python_cmd(ctx), "ninja", extra="--force-reinstall")
            ),
        )
    return ok(f"ninja {outcome.output.splitlines()[0] if outcome.output else '?'} ({path})", data={"path": path})


@check(
    "python-headers",
    title="Python headers",
    category="toolchain",
    cache=("python",),
    fm=("FM01",),
    symptoms=("fatal error: Python.h: No such file or directory",),
    cause="Compiling a Python extension needs the interpreter's C headers (a separate -dev package on Linux).",
    fix="Debian/Ubuntu: sudo apt install python3.X-dev; pyenv/conda/python.org builds ship them.",
)
def check_python_headers(ctx: Context) -> CheckResult:
    """Python.h exists for the probed interpreter."""
    include = ctx.probe.python_include()
    p = ctx.probe.platform()
    header = os.path.join(include, "Python.h") if include else None
    if header and os.path.isfile(header):
        return ok(f"{header}", data={"include": include})
    command = hints.python_dev_install(f"{p.python_version[0]}.{p.python_version[1]}", p.system)
    return warn(
        f"Python.h not found ({include or 'no include folder'}): the rasterizer extension cannot be "
        "compiled (the pure-torch rasterizer is used)",
        data={"include": include},
        remediation=fix_it(
            "Install the Python development headers for this interpreter.", *([command] if command else [])
        ),
    )

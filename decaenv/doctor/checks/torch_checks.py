"""Checks of the `torch` category: import, CUDA runtime, GPU architectures, `torch.load` defaults."""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from decaenv.doctor import hints
from decaenv.doctor.checks._common import python_cmd
from decaenv.doctor.context import Context
from decaenv.doctor.model import CheckResult, FixAction, fail, fix_it, ok, skip, warn
from decaenv.doctor.probe import ProbeLost
from decaenv.doctor.registry import check
from decaenv.doctor.toolchain_facts import parse_version_text

MIN_TORCH = (1, 13)


def _install_fix(ctx: Context, reinstall: bool = False):
    p = ctx.probe.platform()
    command = hints.torch_install(python_cmd(ctx), p.system, bool(ctx.probe.nvidia_driver()))
    if reinstall:
        command = command.replace(" install ", " install --force-reinstall ", 1)
    return command


@check(
    "torch",
    title="PyTorch",
    category="torch",
    probes=("torch",),
    cache=("site",),
    cpu_blocker=True,
    fm=("FM16", "FM39"),
    symptoms=(
        "ModuleNotFoundError: No module named 'torch'",
        "No matching distribution found for torch==1.6.0",
        "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.x",
    ),
    cause="DECA pins torch 1.6 (Python <= 3.8 only); decaenv works with torch >= 1.13.",
    fix="Install torch for this interpreter (CPU wheel index when there is no NVIDIA GPU).",
)
def check_torch(ctx: Context) -> CheckResult:
    """`import torch` in a fresh process: version, build, a CPU op, numpy interop."""
    try:
        info = ctx.section("torch")
    except ProbeLost as exc:
        return fail(
            f"importing torch kills the process ({exc})",
            exc.stderr_tail.splitlines()[-8:],
            remediation=fix_it("Reinstall torch for this interpreter.", _install_fix(ctx, reinstall=True)),
        )
    if not info.get("installed"):
        command = _install_fix(ctx)
        return fail(
            "torch is not installed in this environment",
            [f"interpreter: {python_cmd(ctx)}"],
            data={"installed": False},
            remediation=fix_it("Install PyTorch (the CPU build is enough for decaenv's CPU path).", command),
            fixes=(
                FixAction(
                    "pip-install",
                    "install torch",
                    {"args": hints.torch_install_args(ctx.probe.platform().system, bool(ctx.probe.nvidia_driver()))},
                    needs_yes=True,
                ),
            ),
        )
    if not info.get("importable"):
        return fail(
            f"torch is installed but `import torch` fails: {info.get('error')}",
            [info.get("where", "")],
            data={"installed": True, "importable": False},
            remediation=fix_it(_import_error_advice(info.get("error", "")), _install_fix(ctx, reinstall=True)),
        )
    version = info.get("version") or "?"
    build = f"CUDA {info['cuda']}" if info.get("cuda") else f"ROCm {info['hip']}" if info.get("hip") else "CPU"
    data = {
        "version": version,
        "cuda": info.get("cuda"),
        "hip": info.get("hip"),
        "build": build.split()[0].lower(),
        "file": info.get("file"),
        "import_s": round(info.get("seconds", 0.0), 2),
    }
    details = [f"{info.get('file')}", f"import took {info.get('seconds', 0.0):.1f} s"] + list(info.get("warnings", []))
    if (parse_version_text(version) or (0,)) < MIN_TORCH:
        return fail(
            f"torch {version} is older than decaenv supports (>= 1.13)",
            details,
            data=data,
            remediation=fix_it("Upgrade torch.", _install_fix(ctx).replace(" install ", " install --upgrade ", 1)),
        )
    if not info.get("cpu_ok", True):
        return fail(
            f"torch {version} imports but a CPU tensor op fails: {info.get('cpu_error')}",
            details,
            data=data,
            remediation=fix_it("Reinstall torch.", _install_fix(ctx, reinstall=True)),
        )
    if info.get("numpy_interop") is False:
        return warn(
            f"torch {version} ({build} build) cannot exchange arrays with this numpy: {info.get('numpy_error')}",
            details,
            data=data,
            remediation=fix_it(
                "This torch was built against numpy 1.x: install numpy<2 or a newer torch.",
                hints.pip_install(python_cmd(ctx), "numpy<2"),
            ),
        )
    return ok(f"torch {version} ({build} build)", details, data=data)


def _import_error_advice(error: str) -> str:
    if re.search(r"lib(cudart|cublas|cudnn|nvrtc|cuda)[\w.]*\.so", error):
        return (
            "The CUDA libraries this torch build needs are missing or mismatched: reinstall torch (pip wheels "
            "ship them)."
        )
    if "numpy" in error.lower():
        return "torch and numpy disagree (ABI): install numpy<2 or a torch built for numpy 2."
    if "GLIBC" in error or "GLIBCXX" in error:
        return "This torch wheel needs a newer C/C++ runtime than the system has: use a wheel for this OS."
    return "Reinstall torch for this interpreter."


@check(
    "torch-cuda",
    title="PyTorch CUDA runtime",
    category="torch",
    requires=("torch",),
    probes=("cuda",),
    cache=("site", "driver", "env"),
    fm=("FM34", "FM39"),
    symptoms=(
        "AssertionError: Torch not compiled with CUDA enabled",
        "The NVIDIA driver on your system is too old",
        "Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False",
    ),
    cause="A CPU-only torch, a missing or too old NVIDIA driver, or CUDA_VISIBLE_DEVICES hiding the GPUs.",
    fix="decaenv runs on the CPU; for the GPU install a CUDA build of torch matching the driver.",
)
def check_torch_cuda(ctx: Context) -> CheckResult:
    """CUDA build? available? which devices? (A CPU-only result is fine: decaenv runs on the CPU.)"""
    info = ctx.section("cuda")
    driver = ctx.probe.nvidia_driver()
    data = {
        "compiled": info.get("compiled"),
        "available": info.get("available"),
        "driver": driver,
        "gpus": [{"name": d["name"], "capability": d["capability"]} for d in info.get("devices", [])],
    }
    details = list(info.get("warnings", []))
    if info.get("visible_devices") is not None:
        details.append(f"CUDA_VISIBLE_DEVICES={info['visible_devices']!r}")
    if not info.get("compiled"):
        if driver:
            return warn(
                f"CPU-only build of torch, but an NVIDIA driver ({driver}) is present: the GPU is unused",
                details,
                data=data,
                remediation=fix_it(
                    "Install a CUDA build of torch to use the GPU (the CPU path works as is).",
                    hints.torch_install(python_cmd(ctx), "Linux", True),
                ),
            )
        return ok("CPU-only build of torch: decaenv runs on the CPU", details, data=data)
    if not info.get("available"):
        if not driver:
            return ok(
                f"CUDA {info.get('cuda')} build of torch, but no NVIDIA driver/GPU here: decaenv runs on the CPU",
                details,
                data=data,
            )
        reason = info.get("error") or (details[0] if details else "torch.cuda.is_available() is False")
        return warn(
            f"CUDA {info.get('cuda')} build of torch cannot use the GPU (driver {driver}): {reason}",
            details,
            data=data,
            remediation=fix_it(
                "Update the NVIDIA driver, or install a torch built for an older CUDA "
                "(see https://pytorch.org/get-started/previous-versions/). Check "
                "CUDA_VISIBLE_DEVICES.",
                "nvidia-smi",
            ),
        )
    devices = info.get("devices", [])
    names = "; ".join(f"{d['name']} (sm_{d['capability'][0]}{d['capability'][1]})" for d in devices)
    data["usable_gpus"] = len(devices)
    return ok(f"CUDA {info.get('cuda')}, {len(devices)} GPU(s): {names}", details, data=data)


def _arch_supported(capability: Tuple[int, int], arch_list: List[str]) -> Tuple[bool, str]:
    major, minor = capability
    sms = [(int(m.group(1)), int(m.group(2))) for m in (re.match(r"sm_(\d+?)(\d)a?$", a) for a in arch_list) if m]
    ptx = [(int(m.group(1)), int(m.group(2))) for m in (re.match(r"compute_(\d+?)(\d)a?$", a) for a in arch_list) if m]
    if (major, minor) in sms:
        return True, f"sm_{major}{minor} kernels"
    if any(s[0] == major and s[1] <= minor for s in sms):
        return True, "kernels of an earlier minor architecture (binary compatible)"
    if any(p <= (major, minor) for p in ptx):
        return True, "PTX, JIT-compiled at first use (slow first run)"
    return False, "no kernels for this GPU"


def _arch_env_problems(value: Optional[str]) -> List[str]:
    if not value:
        return []
    tokens = [t for t in re.split(r"[;\s]+", value.strip()) if t]
    bad = [t for t in tokens if not re.match(r"^\d+\.\d+a?(\+PTX)?$", t)]
    if not bad:
        return []
    return [f'TORCH_CUDA_ARCH_LIST has entries nvcc will not understand: {", ".join(bad)} (use e.g. "8.6;8.9+PTX")']


@check(
    "torch-gpu-arch",
    title="GPU architectures",
    category="torch",
    requires=("torch-cuda",),
    probes=("cuda",),
    cache=("site", "driver", "env"),
    fm=("FM10",),
    symptoms=(
        "no kernel image is available for execution on the device",
        "nvcc fatal : Unsupported gpu architecture 'compute_86'",
    ),
    cause="The torch build (or an extension) has no kernels for the GPU's compute capability.",
    fix="Install a torch build that lists the GPU's architecture (newer GPUs need newer CUDA wheels).",
)
def check_gpu_arch(ctx: Context) -> CheckResult:
    """Each GPU's capability against `torch.cuda.get_arch_list()`, plus a real tensor op on every device."""
    info = ctx.section("cuda")
    devices = info.get("devices", [])
    if not info.get("available") or not devices:
        return skip("no usable CUDA device")
    arch_list = info.get("arch_list", [])
    problems, lines = [], []
    for d in devices:
        cap = (d["capability"][0], d["capability"][1])
        supported, how = _arch_supported(cap, arch_list)
        smoke = d.get("smoke", "ok")
        lines.append(f"GPU {d['index']} {d['name']} sm_{cap[0]}{cap[1]}: {how}; tensor op: {smoke}")
        if not supported or smoke != "ok":
            problems.append(f"GPU {d['index']} ({d['name']}, sm_{cap[0]}{cap[1]})")
    lines.append(f"torch arch list: {' '.join(arch_list) or '(empty)'}")
    env_problems = _arch_env_problems(info.get("arch_env"))
    data = {"arch_list": arch_list, "problems": problems}
    if problems:
        return fail(
            f"this torch build cannot run kernels on {', '.join(problems)}",
            lines + env_problems,
            data=data,
            remediation=fix_it(
                "Install a torch build for this GPU (https://pytorch.org/get-started/locally/; "
                "RTX 50xx needs CUDA >= 12.8 wheels).",
                hints.pip_install(python_cmd(ctx), "torch", extra="--upgrade"),
            ),
        )
    if env_problems:
        return warn(
            env_problems[0],
            lines,
            data=data,
            remediation=fix_it("Fix TORCH_CUDA_ARCH_LIST or unset it.", "unset TORCH_CUDA_ARCH_LIST"),
        )
    return ok(f"kernels present for {len(devices)} GPU(s); a tensor op ran on each", lines, data=data)


@check(
    "torch-load",
    title="torch.load defaults",
    category="torch",
    requires=("torch",),
    probes=("torch-load",),
    cache=("site", "env"),
    fm=("FM33", "FM34"),
    symptoms=(
        "_pickle.UnpicklingError: Weights only load failed",
        "In PyTorch 2.6, we changed the default value of the weights_only argument",
    ),
    cause="torch 2.6 made torch.load(weights_only=True) the default; DECA calls torch.load(model_path) bare.",
    fix="decaenv passes weights_only and map_location explicitly; DECA's own code may need weights_only=False "
    "for a hash-verified file.",
)
def check_torch_load(ctx: Context) -> CheckResult:
    """What a bare `torch.load` does here (probed with a non-tensor object), and that a safe load works."""
    info = ctx.section("torch-load")
    data = {"default_weights_only": info.get("default_weights_only"), "safe_load_ok": info.get("safe_load_ok")}
    if not info.get("safe_load_ok"):
        return fail(
            f"torch.load(weights_only=True) fails on a plain state dict: {info.get('safe_load_error')}",
            data=data,
            remediation=fix_it("Reinstall torch.", _install_fix(ctx, reinstall=True)),
        )
    if not info.get("has_weights_only"):
        return warn(
            "this torch's torch.load has no weights_only argument: any checkpoint can run code when loaded",
            data=data,
            remediation=fix_it("Upgrade torch (>= 1.13).", _install_fix(ctx)),
        )
    details = ["decaenv loads deca_model.tar with weights_only=True and map_location='cpu'"]
    if info.get("env_force_no"):
        return warn(
            "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set: every torch.load here may run pickled code",
            details,
            data=data,
            remediation=fix_it("Unset it.", "unset TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"),
        )
    if info.get("default_weights_only"):
        details.append(
            "DECA's own `torch.load(model_path)` relies on the old default: it now fails on files "
            "holding anything but tensors (FM33)"
        )
        return ok("weights_only=True by default (torch >= 2.6); decaenv passes it explicitly", details, data=data)
    return ok(
        "weights_only=False by default (torch < 2.6); decaenv passes weights_only=True explicitly", details, data=data
    )


@check(
    "bf16",
    title="bf16 inference (--precision bf16)",
    category="torch",
    requires=("torch-cuda",),
    probes=("cuda",),
    cache=("site", "driver", "env"),
    symptoms=("decaenv reconstruct --precision bf16 is slower than fp32",),
    cause="bf16 is fast only on GPUs with tensor cores (compute capability >= 8.0) and CPUs with AMX-BF16 or "
    "AVX512-BF16; elsewhere it is emulated.",
    fix="Keep the default --precision fp32 where bf16 is not supported well.",
)
def check_bf16(ctx) -> CheckResult:
    """Whether `decaenv reconstruct --precision bf16` is fast on this CPU and these GPUs (informational)."""
    from decaenv.runtime.hardware import bf16_verdict, cpu_flags

    flags = cpu_flags()
    cpu_good, cpu_why = bf16_verdict(flags)
    devices = ctx.section("cuda").get("devices", []) if ctx.section("cuda").get("available") else []
    data = {"cpu": cpu_good, "cpu_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f"})}
    details = [cpu_why]
    if devices:
        gpu_good, gpu_why = bf16_verdict((), [tuple(d["capability"]) for d in devices], [d["name"] for d in devices])
        data["gpu"] = gpu_good
        details.append(gpu_why)
    good = data.get("gpu", cpu_good)
    where = "GPU" if devices else "CPU"
    summary = (
        f"--precision bf16 is supported well on this {where}"
        if good
        else f"--precision bf16 would be slow on this {where}: keep the default fp32"
    )
    return ok(summary, details, data=data)

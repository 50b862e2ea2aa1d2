"""The `checkout` category: the known breakages that will hit the user's DECA checkout here, one row each.

Shown only when the doctor runs inside a DECA checkout or with `--deca-dir DIR` (`Context.deca_dir`). Each row
reads the checkout's lines (`decaenv.doctor.deca_source`) and this environment's facts (the probe sections the
other categories use), and is a *warn* naming file:line and the fix — `decaenv exec -- …` (a shim this decaenv
registers) and/or `decaenv patch DIR` — when the breakage will hit, *ok* when it will not. The last row,
`deca-demo`, says whether DECA's own demo will run here under `decaenv exec`; the verdict line repeats it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

from decaenv.doctor import hints
from decaenv.doctor.checks._common import python_cmd
from decaenv.doctor.deca_source import DEMO, PIP_NAMES, Hit, grep
from decaenv.doctor.model import CheckResult, fix_it, ok, skip, warn
from decaenv.doctor.registry import check
from decaenv.doctor.toolchain_facts import parse_version_text

CATEGORY = "checkout"
SHOWN = 4  # file:line places named in a summary


@dataclass(frozen=True)
class Breakage:
    """What a row found: the lines, whether it will hit here (and why), and which fixes exist."""

    hits: Tuple[Hit, ...]
    breaks: bool
    why: str
    shims: Tuple[str, ...] = ()   # `decaenv exec` shims that fix it (each must be registered here)
    patch_rule: Optional[str] = None  # `decaenv patch` rule that rewrites it
    demo_path: bool = True  # does DECA's demo, run as shipped, reach it? (else: other scripts / options)


def _root(ctx) -> Optional[Path]:
    return getattr(ctx, "deca_dir", None)


def _registered(ctx) -> Tuple[str, ...]:
    info = ctx.section("compat")
    return tuple(row["id"] for row in info.get("patches", []))


def _places(hits: Sequence[Hit]) -> str:
    shown = ", ".join(h.where for h in hits[:SHOWN])
    return shown + (f" and {len(hits) - SHOWN} more" if len(hits) > SHOWN else "")


def _cuda_usable(ctx) -> bool:
    return bool(ctx.section("cuda").get("available")) if ctx.section("torch").get("importable") else False


def _demo_command(ctx) -> str:
    device = "" if _cuda_usable(ctx) else " --device cpu"
    return f"decaenv exec -- python {DEMO} -i TestSamples/examples -s TestSamples/examples/results{device}"


def report(ctx, found: Breakage, title: str, ok_text: str) -> CheckResult:
    """The row for one breakage: ok when it will not hit, else a warn naming file:line and the fix."""
    root = _root(ctx)
    registered = _registered(ctx)
    exec_fix = bool(found.shims) and all(s in registered for s in found.shims)
    data = {"checkout": str(root), "hits": [h.where for h in found.hits], "breaks": found.breaks,
            "why": found.why, "exec_fix": exec_fix, "shims": list(found.shims), "patch_rule": found.patch_rule,
            "demo_path": found.demo_path}
    details = [f"{h.where}: {h.text}" for h in found.hits]
    if not found.breaks:
        return ok(ok_text, details, data=data)
    ways, commands = [], []
    if exec_fix:
        ways.append(f"run DECA's code under `decaenv exec` (shim{'s' if len(found.shims) > 1 else ''} "
                    f"{', '.join(found.shims)} fix{'' if len(found.shims) > 1 else 'es'} it without editing the code)")
        commands.append(_demo_command(ctx))
    elif found.shims:
        missing = [s for s in found.shims if s not in registered]
        ways.append(f"this decaenv has no `{'`, `'.join(missing)}` shim for it: upgrade decaenv")
    if found.patch_rule:
        ways.append(f"or rewrite the lines once with `decaenv patch` (rule {found.patch_rule}; --revert undoes it)")
        commands.append(f"decaenv patch {hints.quote(str(root))}")
    where = f" at {_places(found.hits)}" if found.hits else ""
    text = "; ".join(ways) or "no shim or rewrite fixes this: see the details"
    text = text[0].upper() + text[1:] + "."
    return warn(f"{title}{where}: {found.why}", details, data=data, remediation=fix_it(text, *commands))


def _rows(ctx, compute: Callable[[Path], Breakage], title: str, ok_text: str) -> CheckResult:
    root = _root(ctx)
    if root is None:
        return skip("no DECA checkout in use (run in one, or pass --deca-dir DIR)")
    return report(ctx, compute(root), title, ok_text)


def _version(text: Optional[str]) -> Tuple[int, ...]:
    return parse_version_text(text or "") or (0,)


# -- the rows ----------------------------------------------------------------------------------------------

@check("deca-fa-enum", title="LandmarksType._2D", category=CATEGORY, probes=("face-alignment", "compat"),
       fm=("FM12",), symptoms=("AttributeError: _2D",),
       cause="DECA's detectors.py calls FaceAlignment(LandmarksType._2D, ...); face_alignment >= 1.3.5 only has "
             "TWO_D.",
       fix="decaenv exec (shim face-alignment-api) or decaenv patch DIR (rule fa-landmarks-type).")
def check_fa_enum(ctx) -> CheckResult:
    """`LandmarksType._2D` in the checkout with a face_alignment that no longer has it."""

    def compute(root: Path) -> Breakage:
        hits = tuple(grep(root, re.compile(r"\bLandmarksType\.(_2D|_2halfD|_3D)\b")))
        info = ctx.section("face-alignment")
        members = info.get("landmarks_members") or []
        breaks = bool(hits) and info.get("installed", False) and "_2D" not in members
        why = (f"face_alignment {info.get('version')} has no LandmarksType._2D (AttributeError: _2D)" if breaks
               else "")
        return Breakage(hits, breaks, why, ("face-alignment-api",), "fa-landmarks-type")

    return _rows(ctx, compute, "LandmarksType._2D", "no LandmarksType._2D that this face_alignment lacks")


@check("deca-fan-device", title="FAN's CUDA default", category=CATEGORY,
       probes=("face-alignment", "torch", "cuda", "compat"), fm=("FM39",),
       symptoms=("AssertionError: Torch not compiled with CUDA enabled",),
       cause="DECA builds FaceAlignment(...) without device=, and face_alignment defaults to device='cuda'.",
       fix="decaenv exec (shim face-alignment-cpu passes device='cpu' when CUDA is not available).")
def check_fan_device(ctx) -> CheckResult:
    """`FaceAlignment(...)` without a device on a machine without usable CUDA."""

    def compute(root: Path) -> Breakage:
        hits = tuple(grep(root, re.compile(r"\bFaceAlignment\("), unless=re.compile(r"\bdevice\s*=")))
        default = ctx.section("face-alignment").get("defaults", {}).get("device")
        breaks = bool(hits) and default == "'cuda'" and not _cuda_usable(ctx)
        why = "face_alignment defaults to device='cuda' and CUDA is not usable here" if breaks else ""
        return Breakage(hits, breaks, why, ("face-alignment-cpu",))

    return _rows(ctx, compute, "FaceAlignment without device=", "FAN's device default works here")


@check("deca-chumpy", title="chumpy (FLAME pickle)", category=CATEGORY, probes=("chumpy", "compat"),
       fm=("FM13", "FM14", "FM15"),
       symptoms=("ModuleNotFoundError: No module named 'chumpy'",
                 "AttributeError: module 'inspect' has no attribute 'getargspec'"),
       cause="DECA's FLAME.py unpickles generic_model.pkl, which imports chumpy; chumpy 0.70 calls "
             "inspect.getargspec (gone in Python 3.11) and numpy's removed aliases.",
       fix="decaenv exec (shims inspect-getargspec and numpy-aliases, or chumpy-stand-in when chumpy is absent).")
def check_chumpy_use(ctx) -> CheckResult:
    """DECA's FLAME unpickling, which imports chumpy, with the chumpy (or its absence) of this environment."""

    def compute(root: Path) -> Breakage:
        hits = tuple(h for h in grep(root, re.compile(r"\bpickle\.load\(")) if h.path.endswith("models/FLAME.py"))
        info = ctx.section("chumpy")
        if not hits:
            return Breakage(hits, False, "")
        if not info.get("installed"):
            return Breakage(hits, True, "chumpy is not installed (ModuleNotFoundError: chumpy)", ("chumpy-stand-in",))
        if info.get("importable"):
            return Breakage(hits, False, "")
        cause = info.get("cause", "other")
        shims = {"getargspec": ("inspect-getargspec", "numpy-aliases"), "numpy-alias": ("numpy-aliases",)}
        why = {"getargspec": "chumpy calls inspect.getargspec, which this Python removed",
               "numpy-alias": "chumpy imports numpy aliases this numpy removed"}.get(cause, "chumpy does not import")
        return Breakage(hits, True, f"{why} ({info.get('error', '')[:120]})", shims.get(cause, ()))

    return _rows(ctx, compute, "FLAME's pickle needs chumpy", "chumpy imports here (or is not used)")


_NP_ALIAS = re.compile(r"(?<![\w.])(?:np|numpy)\.(int|float|bool|object|complex|str|unicode|long)\b(?![\w.])")


@check("deca-numpy-aliases", title="numpy aliases", category=CATEGORY, probes=("numpy", "compat"), fm=("FM19",),
       symptoms=("AttributeError: module 'numpy' has no attribute 'int'",),
       cause="DECA's util.py uses np.int/np.float, which numpy 1.24 removed.",
       fix="decaenv exec (shim numpy-aliases) or decaenv patch DIR (rule numpy-aliases).")
def check_numpy_aliases(ctx) -> CheckResult:
    """np.int/np.float/... in DECA's code with a numpy that removed them."""

    def compute(root: Path) -> Breakage:
        missing = set(ctx.section("numpy").get("aliases_missing") or [])
        hits = tuple(h for h in grep(root, _NP_ALIAS)
                     if any(m.group(1) in missing for m in _NP_ALIAS.finditer(h.text)))
        version = ctx.section("numpy").get("version")
        return Breakage(hits, bool(hits), f"numpy {version} removed these aliases (AttributeError)",
                        ("numpy-aliases",), "numpy-aliases")

    return _rows(ctx, compute, "numpy aliases", "no numpy alias that this numpy removed")


@check("deca-torch-load", title="torch.load defaults", category=CATEGORY, probes=("torch", "cuda", "compat"),
       fm=("FM33", "FM34"),
       symptoms=("RuntimeError: Attempting to deserialize object on a CUDA device",
                 "_pickle.UnpicklingError: Weights only load failed"),
       cause="DECA calls torch.load(path) without map_location (a GPU-saved checkpoint on a CPU-only machine) "
             "and, on torch >= 2.6, under the weights_only=True default.",
       fix="decaenv exec (shim torch-load) or decaenv patch DIR (rule torch-load-map-location).")
def check_torch_load(ctx) -> CheckResult:
    """`torch.load(...)` without map_location where CUDA is not usable, or under torch 2.6's weights_only default."""

    def compute(root: Path) -> Breakage:
        hits = tuple(grep(root, re.compile(r"\btorch\.load\("), unless=re.compile(r"\bmap_location\s*=")))
        version = ctx.section("torch").get("version")
        reasons = []
        if not _cuda_usable(ctx):
            reasons.append("no usable CUDA here, and a GPU-saved checkpoint needs map_location")
        if _version(version) >= (2, 6):
            reasons.append(f"torch {version} loads with weights_only=True unless told otherwise")
        return Breakage(hits, bool(hits and reasons), "; ".join(reasons), ("torch-load",), "torch-load-map-location")

    return _rows(ctx, compute, "torch.load without map_location", "torch.load's defaults work here")


_RAST = re.compile(r"""load\(\s*name\s*=\s*['"]standard_rasterize_cuda|-std=c\+\+14|gcc-7""")


@check("deca-rasterizer", title="standard rasterizer (JIT)", category=CATEGORY,
       probes=("torch", "cuda", "compat"), fm=("FM01", "FM02", "FM04", "FM07"),
       symptoms=("nvcc fatal : Failed to preprocess host compiler properties", "#error C++17 or later compatible "
                 "compiler is required", "ImportError: standard_rasterize_cuda"),
       cause="DECA's renderer compiles standard_rasterize_cuda at run time (a CUDA toolkit is required) with "
             "-std=c++14 and -ccbin=$(which gcc-7), which today's torch and compilers reject.",
       fix="decaenv exec (shim standard-rasterizer: decaenv's rasterizer under DECA's module name, no build); "
           "with a CUDA toolkit, decaenv patch DIR drops the flags.")
def check_rasterizer(ctx) -> CheckResult:
    """DECA's `standard` rasterizer: a CUDA JIT build with gcc-7/-std=c++14 flags."""

    def compute(root: Path) -> Breakage:
        hits = tuple(sorted(grep(root, _RAST), key=lambda h: (h.path.endswith("setup.py"), h.path, h.line)))
        torch_info = ctx.section("torch")
        cuda = bool(torch_info.get("cuda")) and _cuda_usable(ctx)
        why = ("this torch has no usable CUDA: the CUDA extension cannot be built or run" if not cuda else
               "its -std=c++14 and -ccbin=$(which gcc-7) flags fail with today's torch headers and compilers")
        return Breakage(hits, bool(hits), why, ("standard-rasterizer",), "rasterizer-jit-flags" if cuda else None)

    return _rows(ctx, compute, "standard_rasterize_cuda JIT build", "no JIT-built rasterizer in this checkout")


@check("deca-pytorch3d", title="pytorch3d", category=CATEGORY, probes=("pytorch3d", "compat"),
       fm=("FM25",), symptoms=("ModuleNotFoundError: No module named 'pytorch3d'",),
       cause="DECA's renderer imports pytorch3d for --rasterizer_type pytorch3d (its config's default); pytorch3d "
             "has no wheels for today's torch.",
       fix="decaenv exec (shim pytorch3d-stand-in: Meshes, load_obj, rasterize_meshes), or --rasterizer_type "
           "standard.")
def check_pytorch3d(ctx) -> CheckResult:
    """`from pytorch3d ...` in the checkout with pytorch3d missing or broken."""

    def compute(root: Path) -> Breakage:
        hits = tuple(grep(root, re.compile(r"^\s*(from|import)\s+pytorch3d\b")))
        info = ctx.section("pytorch3d")
        usable = info.get("installed") and (info.get("import") or {}).get("importable")
        why = "pytorch3d is not installed" if not info.get("installed") else "pytorch3d does not import"
        # DECA's demos default to --rasterizer_type standard; its config (and other scripts) to pytorch3d
        return Breakage(hits, bool(hits) and not usable, why, ("pytorch3d-stand-in",), demo_path=False)

    return _rows(ctx, compute, "pytorch3d imports", "pytorch3d imports here (or is not used)")


@check("deca-imports", title="DECA's imports", category=CATEGORY, probes=("deca-imports",),
       fm=("FM16",), symptoms=("ModuleNotFoundError: No module named 'kornia'",
                               "ModuleNotFoundError: No module named 'torchvision'"),
       cause="DECA's demo imports torchvision, kornia, yacs, opencv, face_alignment and more at start-up.",
       fix="pip install the missing packages (no shim can stand in for them).")
def check_imports(ctx) -> CheckResult:
    """Third-party modules DECA's demo imports at start-up that this environment lacks."""
    root = _root(ctx)
    if root is None:
        return skip("no DECA checkout in use (run in one, or pass --deca-dir DIR)")
    info = ctx.section("deca-imports")
    missing = info.get("missing", [])
    data = {"checkout": str(root), "modules": info.get("modules", []), "missing": missing, "breaks": bool(missing),
            "exec_fix": False, "hits": [], "shims": [], "patch_rule": None}
    if not info.get("modules"):
        return ok(f"no {DEMO} to check", data=data)
    if not missing:
        return ok(f"all {len(info['modules'])} modules {DEMO} imports are installed", data=data)
    pips = [PIP_NAMES.get(m, m) for m in missing]
    return warn(f"{DEMO} imports {', '.join(missing)}, not installed here (ModuleNotFoundError)",
                [f"imported at start-up: {', '.join(info['modules'])}"], data=data,
                remediation=fix_it("Install them (decaenv exec cannot stand in for them).",
                                   hints.pip_install(python_cmd(ctx), *pips)))


ROWS = ("deca-fa-enum", "deca-fan-device", "deca-chumpy", "deca-numpy-aliases", "deca-torch-load",
        "deca-rasterizer", "deca-pytorch3d", "deca-imports")


@check("deca-demo", title="DECA's demo here", category=CATEGORY, requires=ROWS, fm=("FM01", "FM12", "FM39"),
       symptoms=("python demos/demo_reconstruct.py stops on a fresh machine (AttributeError: _2D, No module named "
                 "'chumpy', standard_rasterize_cuda build errors, Torch not compiled with CUDA enabled)",),
       cause="Every breakage above that hits this checkout here must have a `decaenv exec` shim for DECA's own "
             "demo to run unmodified.",
       fix="decaenv exec -- python demos/demo_reconstruct.py ... (add --device cpu without CUDA)")
def check_demo(ctx) -> CheckResult:
    """Whether DECA's demo will run here under `decaenv exec`, from the rows above."""
    root = _root(ctx)
    if root is None:
        return skip("no DECA checkout in use (run in one, or pass --deca-dir DIR)")
    rows = {cid: ctx.result(cid) for cid in ROWS}
    unchecked = [cid for cid, r in rows.items() if r is None or r.status.value not in ("ok", "warn")]
    blockers = [cid for cid, r in rows.items() if r is not None and r.data.get("breaks")
                and not r.data.get("exec_fix") and r.data.get("demo_path", True)]
    handled = [cid for cid, r in rows.items() if r is not None and r.data.get("breaks") and r.data.get("exec_fix")]
    data = {"checkout": str(root), "runs_under_exec": not blockers and not unchecked, "blockers": blockers,
            "handled_by_exec": handled, "unchecked": unchecked, "demo": DEMO}
    if blockers or unchecked:
        what = ", ".join(blockers + [f"{c} (not checked)" for c in unchecked])
        return warn(f"{DEMO} will not run here, even under `decaenv exec`: {what}", data=data,
                    remediation=fix_it("Fix the rows named above first (their remediations say how)."))
    note = (f" (`decaenv exec` handles: {', '.join(c[5:] for c in handled)})" if handled
            else " (nothing here needs a shim)")
    return ok(f"{DEMO} will run here under `decaenv exec`{note}", [_demo_command(ctx)], data=data)

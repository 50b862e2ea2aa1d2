"""Checks of the `python` category: numpy, chumpy, decaenv's FLAME loader, runtime packages, face_alignment,
gdown. Every import happens in the probe worker."""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List

from decaenv.doctor import hints
from decaenv.doctor.checks._common import python_cmd
from decaenv.doctor.context import Context
from decaenv.doctor.contracts import FaceAlignmentSection
from decaenv.doctor.model import CheckResult, FixAction, fail, fix_it, ok, skip, warn
from decaenv.doctor.registry import check
from decaenv.doctor.toolchain_facts import parse_version_text

CHUMPY_CAUSES = {
    "getargspec": "Python 3.11 removed inspect.getargspec, which chumpy 0.70 calls at import (FM14)",
    "numpy-alias": "chumpy 0.70 does `from numpy import bool, int, ...`; numpy >= 1.24 removed those aliases (FM13)",
    "other": "chumpy fails to import",
}


@check(
    "numpy",
    title="numpy",
    category="python",
    probes=("numpy",),
    cache=("site",),
    cpu_blocker=True,
    fm=("FM13", "FM19"),
    symptoms=(
        "ImportError: cannot import name 'bool' from 'numpy'",
        "AttributeError: module 'numpy' has no attribute 'int'",
    ),
    cause="numpy 1.24 removed the np.bool/np.int/... aliases that chumpy and DECA's old code use.",
    fix="Nothing to do for decaenv (it does not use them); DECA's original code needs numpy<1.24.",
)
def check_numpy(ctx: Context) -> CheckResult:
    """numpy importable, its version and which of the old aliases are gone."""
    info = ctx.section("numpy")
    py = python_cmd(ctx)
    if not info.get("importable"):
        return fail(
            f"numpy cannot be imported: {info.get('error')}",
            [info.get("where", "")],
            data=info,
            remediation=fix_it(
                "Reinstall numpy for this interpreter.", hints.pip_install(py, "numpy", extra="--force-reinstall")
            ),
        )
    version = info.get("version") or "?"
    parsed = parse_version_text(version) or (0,)
    data = {"version": version, "aliases_missing": info.get("aliases_missing", [])}
    if parsed < (1, 21):
        return fail(
            f"numpy {version} is older than decaenv supports (>= 1.21)",
            data=data,
            remediation=fix_it("Upgrade numpy.", hints.pip_install(py, "numpy>=1.21")),
        )
    if parsed >= (1, 24):
        gone = ", ".join(f"np.{a}" for a in info.get("aliases_missing", [])) or "np.int, np.float, ..."
        return ok(
            f"numpy {version}",
            [f"{gone} no longer exist: chumpy 0.70 and DECA's util.py fail on this numpy; decaenv does not use them"],
            data=data,
        )
    return ok(f"numpy {version} (still has the old aliases chumpy needs)", data=data)


@check(
    "chumpy",
    title="chumpy (not needed)",
    category="python",
    probes=("chumpy",),
    cache=("site",),
    fm=("FM13", "FM14", "FM15"),
    symptoms=(
        "ImportError: cannot import name 'int' from 'numpy'",
        "AttributeError: module 'inspect' has no attribute 'getargspec'",
        "ModuleNotFoundError: No module named 'pip' (Failed to build 'chumpy')",
    ),
    cause="chumpy is unmaintained: it breaks on numpy >= 1.24 and Python >= 3.11, and its sdist cannot build "
    "under PEP 517 build isolation.",
    fix="decaenv reads FLAME without chumpy; if other code needs it: pip install chumpy --no-build-isolation "
    "plus numpy<1.24 and Python <= 3.10, or a maintained fork.",
)
def check_chumpy(ctx: Context) -> CheckResult:
    """chumpy installed? importable? the exact cause when not (decaenv does not need it)."""
    info = ctx.section("chumpy")
    if not info.get("installed"):
        return ok(
            "not installed — not needed: decaenv reads FLAME without chumpy",
            [
                "if other code needs chumpy: `pip install chumpy` fails under build isolation with "
                "\"No module named 'pip'\"; use --no-build-isolation (FM15)"
            ],
            data={"installed": False},
        )
    version = info.get("version") or "?"
    if info.get("importable"):
        return ok(f"chumpy {version} imports (decaenv does not need it)", data={"installed": True, "version": version})
    cause = info.get("cause", "other")
    error = re.sub(r" \((/|[A-Za-z]:\\)[^)]*\)", "", info.get("error", ""))  # drop "(/path/numpy/__init__.py)"
    return warn(
        f"chumpy {version} is installed but does not import: {error}",
        [CHUMPY_CAUSES[cause], info.get("where", "")],
        data={"installed": True, "cause": cause, "error": error},
        remediation=fix_it(
            "decaenv does not need chumpy, so this only affects other code (e.g. DECA's "
            "original FLAME.py). Run that code under `decaenv exec`, which makes chumpy "
            "import here (its shims restore inspect.getargspec and the numpy aliases); "
            "or use Python <= 3.10 with numpy<1.24.",
            "decaenv exec -- python demos/demo_reconstruct.py ...   # chumpy imports",
            f"{hints.quote(python_cmd(ctx))} -m pip uninstall chumpy   # if nothing else needs it",
        ),
    )


@check(
    "flame-loader",
    title="FLAME without chumpy",
    category="python",
    requires=("numpy",),
    probes=("flame-selftest",),
    cache=("site",),
    cpu_blocker=True,
    fm=("FM13", "FM14"),
    symptoms=("ModuleNotFoundError: No module named 'chumpy'",),
    cause="FLAME's generic_model.pkl references chumpy classes, so plain pickle.load imports chumpy.",
    fix="decaenv's allowlisted unpickler maps chumpy objects to plain arrays; nothing to install.",
)
def check_flame_loader(ctx: Context) -> CheckResult:
    """decaenv's own loader reads a chumpy-style FLAME pickle here, with chumpy made unimportable."""
    info = ctx.section("flame-selftest")
    if info.get("ok") and not info.get("chumpy_imported"):
        return ok(
            f"read a chumpy-style FLAME pickle with chumpy blocked ({info.get('seconds', 0) * 1000:.0f} ms)",
            data={"ok": True},
        )
    return fail(
        f"decaenv could not read a chumpy-style FLAME pickle here: {info.get('error')}",
        [info.get("where", "")],
        data=info,
        remediation=fix_it(
            "This is a decaenv problem with this numpy; please report it with `decaenv doctor --markdown`.",
            "decaenv doctor --markdown",
        ),
    )


RUNTIME_MODULES = (("scipy", "scipy"), ("skimage", "scikit-image"), ("PIL", "pillow"))


@check(
    "runtime-packages",
    title="Runtime packages",
    category="python",
    probes=("runtime-packages",),
    cache=("site",),
    cpu_blocker=True,
    fm=("FM16", "FM18"),
    symptoms=("ModuleNotFoundError: No module named 'skimage'", "ModuleNotFoundError: No module named 'PIL'"),
    cause="decaenv's reconstruction needs scipy, scikit-image and pillow (the `runtime` extra).",
    fix="pip install 'decaenv[runtime]'",
)
def check_runtime_packages(ctx: Context) -> CheckResult:
    """scipy, scikit-image and pillow installed and importable."""
    info = ctx.section("runtime-packages")
    missing: List[str] = []
    broken: List[str] = []
    versions: Dict[str, str] = {}
    for module, dist in RUNTIME_MODULES:
        entry = info.get(module, {})
        if not entry.get("installed"):
            missing.append(dist)
        elif not entry.get("importable"):
            broken.append(f"{dist}: {entry.get('error')}")
        else:
            versions[dist] = entry.get("version") or "?"
    data = {"versions": versions, "missing": missing, "broken": broken}
    py = python_cmd(ctx)
    if missing:
        command = hints.pip_install(py, "decaenv[runtime]")
        return fail(
            f"missing {', '.join(missing)} (needed by decaenv reconstruct)",
            broken,
            data=data,
            remediation=fix_it("Install decaenv's runtime extra.", command),
            fixes=(
                FixAction("pip-install", f"install {', '.join(missing)}", {"specs": list(missing)}, needs_yes=True),
            ),
        )
    if broken:
        return fail(
            f"{len(broken)} runtime package(s) fail to import",
            broken,
            data=data,
            remediation=fix_it(
                "Reinstall them for this interpreter.",
                hints.pip_install(py, *[b.split(":")[0] for b in broken], extra="--force-reinstall"),
            ),
        )
    return ok(", ".join(f"{k} {v}" for k, v in versions.items()), data=data)


@check(
    "gdown",
    title="gdown (Google Drive downloads)",
    category="python",
    probes=("runtime-packages",),
    cache=("site", "data"),
    fm=("FM31", "FM32"),
    symptoms=(
        "Cannot retrieve the public link of the file",
        "unrecognized arguments: --id",
        "TypeError: download() got an unexpected keyword argument 'fuzzy'",
    ),
    cause="deca_model.tar lives on Google Drive; old gdown releases and DECA's scripts use removed options.",
    fix="pip install 'decaenv[fetch]' (a current gdown); decaenv calls its API, never --id/--fuzzy.",
)
def check_gdown(ctx: Context) -> CheckResult:
    """gdown present (needed to fetch deca_model.tar) and recent enough."""
    entry = ctx.section("runtime-packages").get("gdown", {})
    have_model = os.path.isfile(os.path.join(str(ctx.data_dir.path), "deca_model.tar"))
    py = python_cmd(ctx)
    if not entry.get("installed"):
        if have_model:
            return ok("not installed (not needed: deca_model.tar is already present)", data={"installed": False})
        return warn(
            "not installed: `decaenv fetch deca-model` needs it to download from Google Drive",
            data={"installed": False},
            remediation=fix_it("Install the fetch extra.", hints.pip_install(py, "decaenv[fetch]")),
            fixes=(FixAction("pip-install", "install gdown", {"specs": ["gdown>=4.7"]}, needs_yes=True),),
        )
    version = entry.get("version") or "?"
    if not entry.get("importable"):
        return warn(
            f"gdown {version} fails to import: {entry.get('error')}",
            data={"installed": True},
            remediation=fix_it("Reinstall gdown.", hints.pip_install(py, "gdown", extra="--force-reinstall")),
        )
    if (parse_version_text(version) or (0,)) < (4, 7):
        return warn(
            f"gdown {version} is too old for today's Google Drive pages",
            data={"version": version},
            remediation=fix_it("Upgrade gdown.", hints.pip_install(py, "gdown>=4.7", extra="--upgrade")),
        )
    return ok(f"gdown {version}", data={"installed": True, "version": version})


def _weights_state(info: FaceAlignmentSection):
    names = {os.path.basename(u) for u in info.get("urls", [])}
    present = set(info.get("hub_files", []))
    detector = sorted(n for n in names if n.lower().startswith(("s3fd", "sfd")))
    landmarks = sorted(n for n in names if n.upper().startswith("2DFAN"))
    have_det = any(n in present for n in detector) if detector else None
    have_lmk = any(n in present for n in landmarks) if landmarks else None
    return detector, landmarks, have_det, have_lmk


@check(
    "face-alignment",
    title="face_alignment (FAN)",
    category="python",
    probes=("face-alignment",),
    cache=("site", "hub"),
    fm=("FM12", "FM23", "FM24", "FM39"),
    symptoms=(
        "AttributeError: _2D",
        "Downloading the face detection CNN. Please wait...",
        "URLError: <urlopen error [Errno -2] Name or service not known>",
        "ImportError: libGL.so.1: cannot open shared object file",
    ),
    cause="face_alignment renamed LandmarksType._2D to TWO_D after 1.3.4 (the 1.3.5 wheel already has TWO_D), "
    "downloads its weights on first use, defaults to device='cuda' and (1.5.0) to compile=True.",
    fix="decaenv accepts both enum spellings and passes the device; pre-fetch the weights into the torch hub "
    "cache on a machine with internet.",
)
def check_face_alignment(ctx: Context) -> CheckResult:
    """face_alignment version, API spelling, defaults and whether its weights are already cached."""
    info = ctx.section("face-alignment")
    if not info.get("installed"):
        return ok("not installed (optional: FAN face detection and landmarks)", data={"installed": False})
    version = info.get("version") or "?"
    imp = info.get("import", {})
    if not imp.get("importable"):
        error = imp.get("error", "")
        command = (
            "sudo apt install libgl1 libglib2.0-0   # or: pip install opencv-python-headless"
            if "libGL" in error
            else hints.pip_install(python_cmd(ctx), "face-alignment", extra="--force-reinstall")
        )
        return warn(
            f"face_alignment {version} is installed but cannot be imported: {error}",
            [imp.get("where", "")],
            data={"installed": True, "importable": False},
            remediation=fix_it("Fix the import error above (often a missing system library).", command),
        )
    members = info.get("landmarks_members", [])
    api = "TWO_D" if "TWO_D" in members else "_2D" if "_2D" in members else None
    details = [f"LandmarksType members: {', '.join(members) or 'none'}"]
    defaults = info.get("defaults", {})
    if defaults.get("compile") == "True":
        details.append(
            "FaceAlignment() defaults to compile=True: on a CPU the first call spends minutes in "
            "torch.compile; pass compile=False"
        )
    if defaults.get("device") == "'cuda'":
        details.append(
            "FaceAlignment() defaults to device='cuda': on a CPU-only machine pass device='cpu' "
            "(else: AssertionError: Torch not compiled with CUDA enabled)"
        )
    detector, landmarks, have_det, have_lmk = _weights_state(info)
    data = {
        "installed": True,
        "version": version,
        "api": api,
        "weights_cached": bool(have_det and have_lmk),
        "hub_dir": info.get("hub_dir"),
    }
    if api is None:
        return warn(
            f"face_alignment {version}: LandmarksType has neither TWO_D nor _2D",
            details,
            data=data,
            remediation=fix_it("Install a known release.", hints.pip_install(python_cmd(ctx), "face-alignment==1.4.1")),
        )
    api_note = "TWO_D API" if api == "TWO_D" else "old _2D API (decaenv accepts both)"
    if have_det is False or have_lmk is False:
        wanted = [n for n, have in ((detector, have_det), (landmarks, have_lmk)) if have is False]
        files = ", ".join(n for group in wanted for n in group)
        details.append(f"expected in {info.get('hub_dir')}: {files}")
        return warn(
            f"face_alignment {version} ({api_note}); its weights are not cached: the first run downloads "
            "them from adrianbulat.com (needs internet)",
            details,
            data=data,
            fixes=(FixAction("fetch", "fetch FAN's weights (decaenv fetch fan)", {"ids": ["fan"]}),),
            remediation=fix_it(
                f"Fetch them (verified, into torch hub's cache), or copy the files into {info.get('hub_dir')}.",
                "decaenv fetch fan",
                _warmup_command(python_cmd(ctx), api, "compile" in defaults)
                + "   # or let face_alignment download them itself",
            ),
        )
    return ok(f"face_alignment {version} ({api_note}, weights cached)", details, data=data)


def _warmup_command(python: str, api: str, has_compile: bool) -> str:
    extra = ", compile=False" if has_compile else ""
    return (
        f'{hints.quote(python)} -c "import face_alignment as fa; '
        f"fa.FaceAlignment(fa.LandmarksType.{api}, device='cpu'{extra})\""
    )


@check(
    "face-detector",
    title="Face detector (auto)",
    category="python",
    probes=("detectors",),
    cache=("site", "hub", "data"),
    fm=("FM24", "FM41"),
    symptoms=("Downloading the face detection CNN. Please wait...", "no face found in ... (detector mtcnn)"),
    cause="DECA crops from FAN's 68 landmarks; without FAN's weights decaenv's `auto` detector uses MTCNN, "
    "whose crops (and so the codes) differ from DECA's.",
    fix="decaenv fetch fan (face_alignment's S3FD and 2DFAN4 weights, verified, into torch hub's cache).",
)
def check_face_detector(ctx: Context) -> CheckResult:
    """Which detector `decaenv reconstruct --detector auto` will use here, and why."""
    info = ctx.section("detectors")
    if not info.get("api"):
        return skip(f"not checked: {info.get('reason')}")
    plan = info.get("plan", {})
    name, fallback = plan.get("name"), plan.get("fallback")
    skipped = dict(plan.get("skipped", []))
    details = [
        f"{n}: {'usable' if a.get('usable') else 'not usable'} ({a.get('reason')})"
        for n, a in info.get("available", {}).items()
    ]
    data: Dict[str, Any] = {"auto": name, "fallback": fallback, "reason": plan.get("reason"), "skipped": skipped}
    if name == "fan":
        bad = _unverified_fan_files(ctx)
        if bad:
            data["unverified"] = bad
            return warn(
                f"auto uses FAN, but its weights fail verification: {'; '.join(bad)}",
                details,
                data=data,
                remediation=fix_it(
                    "Fetch the official files again (the damaged ones are replaced only after the new ones verify).",
                    "decaenv fetch --force fan",
                ),
            )
        tail = " (MTCNN where FAN finds no face)" if fallback else " (no fallback where FAN finds no face)"
        return ok(f"auto uses FAN, DECA's detector{tail}", details, data=data)
    fan_why = skipped.get("fan", "")
    installed = "not installed" not in fan_why and "does not import" not in fan_why
    used = "MTCNN" if name == "mtcnn" else "no detector (images are used whole)"
    summary = f"auto uses {used}, not DECA's FAN: {fan_why}; crops differ from DECA's"
    if installed:
        return warn(
            summary,
            details,
            data=data,
            fixes=(FixAction("fetch", "fetch FAN's weights (decaenv fetch fan)", {"ids": ["fan"]}),),
            remediation=fix_it(
                "Fetch FAN's weights into torch hub's cache (verified); `auto` then uses FAN.", "decaenv fetch fan"
            ),
        )
    if name != "mtcnn":
        return warn(
            summary,
            details,
            data=data,
            remediation=fix_it(
                "Install a detector: FAN (DECA's) with its weights, or MTCNN's weights.",
                hints.pip_install(python_cmd(ctx), "decaenv[fan]"),
                "decaenv fetch fan",
                "decaenv fetch mtcnn",
            ),
        )
    return ok(summary, details + ["for DECA's crops: pip install 'decaenv[fan]' then `decaenv fetch fan`"], data=data)


def _unverified_fan_files(ctx: Context) -> List[str]:
    """FAN's weight files (the manifest's `fan` group) that are present but fail verification (sha256 prefix,
    first-use record, content), as "name: status" — through `decaenv fetch`'s own status (hash-cached)."""
    from decaenv.doctor import subsystems

    status = ctx.memo("manifest-status", lambda: subsystems.manifest_status(str(ctx.data_dir.path)))
    return [
        f"{f['dest']}: {f['status']}"
        for f in status.get("files", [])
        if f["id"].startswith("fan-") and f["status"] in ("size-mismatch", "hash-mismatch", "invalid")
    ]

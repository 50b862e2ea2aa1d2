"""Checks of the `extension` category: torch's extension cache, rasterizer backends, the build probe, pytorch3d."""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from decaenv.doctor import hints
from decaenv.doctor.checks._common import python_cmd, torch_build
from decaenv.doctor.model import CheckResult, FixAction, fail, fix_it, ok, skip, warn
from decaenv.doctor.registry import check
from decaenv.doctor.toolchain_facts import torch_build_from_file
from decaenv.doctor.verdict import BACKEND_NAMES

STALE_LOCK_S = 600  # a lock older than this is not a build in progress


def extension_root(ctx) -> Tuple[str, Optional[str]]:
    """(root for this interpreter and torch, the default base folder or None when TORCH_EXTENSIONS_DIR is set),
    computed like `torch.utils.cpp_extension._get_build_directory` without importing torch."""
    env = ctx.probe.environ
    if env.get("TORCH_EXTENSIONS_DIR"):
        return env["TORCH_EXTENSIONS_DIR"], None
    p = ctx.probe.platform()
    home = env.get("HOME") or env.get("USERPROFILE") or os.path.expanduser("~")
    if p.system == "Windows":
        base = os.path.join(env.get("LOCALAPPDATA", os.path.join(home, "AppData", "Local")),
                            "torch_extensions", "torch_extensions", "Cache")
    elif p.system == "Darwin":
        base = os.path.join(home, "Library", "Caches", "torch_extensions")
    else:
        base = os.path.join(env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "torch_extensions")
    build = torch_build(ctx)
    accel = (f"rocm{build['hip'].replace('.', '')}" if build.get("hip") else
             f"cu{build['cuda'].replace('.', '')}" if build.get("cuda") else "cpu")
    folder = f"py{p.python_version[0]}{p.python_version[1]}{getattr(sys, 'abiflags', '')}_{accel}"
    return os.path.join(base, folder), base


@dataclass
class CacheScan:
    """What `scan_extension_dir` found."""

    stale_locks: List[str] = field(default_factory=list)
    fresh_locks: List[str] = field(default_factory=list)
    partial: List[str] = field(default_factory=list)
    foreign: List[Tuple[str, str]] = field(default_factory=list)
    built: List[str] = field(default_factory=list)


def scan_extension_dir(root: str, torch_include: Optional[str], now: Optional[float] = None) -> CacheScan:
    """Inspect each extension folder under `root`: lock files, objects without a module, foreign builds."""
    scan = CacheScan()
    now = time.time() if now is None else now
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return scan
    for name in names:
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        try:
            files = os.listdir(folder)
        except OSError:
            continue
        lock = os.path.join(folder, "lock")
        if "lock" in files:
            age = now - os.stat(lock).st_mtime
            (scan.stale_locks if age > STALE_LOCK_S else scan.fresh_locks).append(lock)
        objects = [f for f in files if f.endswith((".o", ".obj"))]
        modules = [f for f in files if f.endswith((".so", ".pyd", ".dylib"))]
        if objects and not modules:
            scan.partial.append(folder)
        elif modules:
            scan.built.append(folder)
            other = _foreign_torch(os.path.join(folder, "build.ninja"), torch_include)
            if other:
                scan.foreign.append((folder, other))
    return scan


def _foreign_torch(ninja_file: str, torch_include: Optional[str]) -> Optional[str]:
    """The torch a built extension was compiled against when it is not this one (None when the same).

    Two installs of the same torch version and build (another venv) are compatible; a different version or
    CUDA build, or a torch that no longer exists, is not."""
    if not torch_include:
        return None
    try:
        with open(ninja_file, encoding="utf-8", errors="replace") as fh:
            text = fh.read(200000)
    except OSError:
        return None
    used = re.findall(r"-isystem\s+(\S+?)[/\\]torch[/\\]include\b", text)
    if not used:
        return None
    mine_site = os.path.dirname(os.path.dirname(os.path.normpath(torch_include)))
    theirs_site = os.path.normpath(used[0])
    if os.path.normcase(theirs_site) == os.path.normcase(mine_site):
        return None
    mine = torch_build_from_file(os.path.join(mine_site, "torch", "version.py"))
    theirs = torch_build_from_file(os.path.join(theirs_site, "torch", "version.py"))
    if not theirs:
        return f"a torch that no longer exists at {theirs_site}"
    if (theirs.get("version"), theirs.get("cuda")) == (mine.get("version"), mine.get("cuda")):
        return None
    return f"torch {theirs.get('version')} at {theirs_site}"


def _decaenv_build_root() -> str:
    from decaenv.paths import build_dir

    return str(build_dir())


def lock_holder(lock: str) -> Optional[str]:
    """Who holds a build lock, as "pid N (name)": decaenv's own locks record their owner (JSON); torch's
    (empty, `FileBaton`) are matched to a running process working in the lock's folder (Linux /proc).
    None when no live holder is found."""
    from decaenv._process import pid_alive

    try:
        with open(lock, encoding="utf-8", errors="replace") as fh:
            text = fh.read(4096)
    except OSError:
        return None
    try:
        import json

        owner = json.loads(text) if text.strip() else None
    except ValueError:
        owner = None
    if isinstance(owner, dict) and isinstance(owner.get("pid"), int):
        import socket

        if owner.get("host") not in (None, socket.gethostname()):
            return f"pid {owner['pid']} on host {owner.get('host')}"
        return f"pid {owner['pid']}{_process_name(owner['pid'])}" if pid_alive(owner["pid"]) else None
    return _process_in(os.path.dirname(lock))


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return f" ({fh.read().strip()})"
    except OSError:
        return ""


def _process_in(folder: str) -> Optional[str]:
    """A running process whose working directory is `folder` (ninja and the compilers run there)."""
    if not os.path.isdir("/proc"):
        return None
    target = os.path.realpath(folder)
    try:
        pids = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
    except OSError:
        return None
    for pid in pids:
        try:
            if os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) == target:
                return f"pid {pid}{_process_name(pid)}"
        except OSError:
            continue
    return None


def _fresh_lock_advice(lock: str, holder: Optional[str]) -> str:
    minutes = STALE_LOCK_S // 60
    if holder:
        return (f"A build is holding {lock} ({holder}): wait for it to finish, then run the doctor again. "
                f"`decaenv doctor --fix` does not remove a live lock; it removes it once it is stale (no build "
                f"running, older than {minutes} minutes).")
    return (f"No running process was found building in {os.path.dirname(lock)}: if a build is starting or "
            f"running elsewhere, wait for it; if none is (a build killed minutes ago), remove the lock — "
            f"`decaenv doctor --fix` only removes it once it is older than {minutes} minutes.")


@check("extension-cache", title="torch extension cache", category="extension", fm=("FM01", "FM06", "FM09"),
       symptoms=("Lock file exists in build directory", "standard_rasterize_cuda.so: cannot open shared object file",
                 "undefined symbol: curandCreateGenerator", "(torch.utils.cpp_extension.load hangs with no output)"),
       cause="An interrupted build leaves `lock` (every later load() waits forever) or objects without a module; "
             "a cache shared between torch versions holds modules built for another torch.",
       fix="Remove the stale lock / partial build (decaenv doctor --fix does it), or set TORCH_EXTENSIONS_DIR per "
           "environment.")
def check_extension_cache(ctx) -> CheckResult:
    """Stale locks, partial and foreign builds in torch's extension cache and decaenv's build folder."""
    root, base = extension_root(ctx)
    include = ctx.probe.package_file("torch", "include")
    scans = [(root, scan_extension_dir(root, include))]
    own = _decaenv_build_root()
    if os.path.isdir(own):
        scans += [(own, scan_extension_dir(own, include))]
        scans += [(os.path.join(own, d), scan_extension_dir(os.path.join(own, d), include))
                  for d in sorted(os.listdir(own)) if os.path.isdir(os.path.join(own, d))]
    stale = [lock for _r, s in scans for lock in s.stale_locks]
    fresh = [lock for _r, s in scans for lock in s.fresh_locks]
    partial = [d for _r, s in scans for d in s.partial]
    foreign = [f for _r, s in scans for f in s.foreign]
    built = [d for _r, s in scans for d in s.built]
    details = [f"cache for this torch: {root}" + ("" if os.path.isdir(root) else " (not created yet)")]
    if base and os.path.isdir(base):
        others = sorted(d for d in os.listdir(base) if d != os.path.basename(root))
        if others:
            details.append(f"other interpreters/torch builds in {base}: {', '.join(others)}")
    details += [f"built: {d}" for d in built]
    fixes = tuple([FixAction("remove-path", f"remove stale lock {p}", {"path": p}) for p in stale]
                  + [FixAction("remove-path", f"remove partial build {d}", {"path": d}) for d in partial]
                  + [FixAction("remove-path", f"remove build made by another torch {d}", {"path": d})
                     for d, _ in foreign])
    data = {"root": root, "stale_locks": stale, "fresh_locks": fresh, "partial": partial,
            "foreign": [d for d, _ in foreign], "built": built}
    if stale:
        return fail(f"stale lock file{'s' if len(stale) > 1 else ''} in the extension cache: loading that "
                    "extension hangs forever", details + stale, data=data, fixes=fixes,
                    remediation=fix_it("Remove the lock (left by an interrupted build), or run `decaenv doctor --fix`.",
                                       *[f"rm -f {hints.quote(p)}" for p in stale]))
    problems: List[str] = []
    holder = lock_holder(fresh[0]) if fresh else None
    if fresh:
        who = f"; held by {holder}" if holder else ""
        problems.append(f"a build is running now, or was killed minutes ago (lock: {fresh[0]}{who})")
    if partial:
        problems.append(f"partial build (objects, no module): {partial[0]}")
    if foreign:
        problems.append(f"built by another torch ({foreign[0][1]}), will not load here: {foreign[0][0]}")
    if re.search(r"[\s#()]", root):
        problems.append(f"the cache path contains spaces or #() characters, which break ninja builds: {root}")
    if problems:
        commands = [f"rm -rf {hints.quote(d)}" for d in partial + [d for d, _ in foreign]]
        if any("spaces" in p for p in problems):
            commands.append("export TORCH_EXTENSIONS_DIR=/tmp/torch_extensions   # any path without spaces")
        parts = ["Remove the leftovers (or run `decaenv doctor --fix`); they are rebuilt on demand."] if fixes else []
        if fresh:
            data["fresh_lock_holder"] = holder
            parts.append(_fresh_lock_advice(fresh[0], holder))
            if not holder:
                commands.append(f"rm -f {hints.quote(fresh[0])}   # only if no build is running")
        return warn(problems[0], details + problems[1:], data=data, fixes=fixes,
                    remediation=fix_it(" ".join(parts) or "Point TORCH_EXTENSIONS_DIR at a path without spaces.",
                                       *commands))
    return ok(f"{len(built)} built extension(s), no stale locks or partial builds", details, data=data)


@check("rasterizer", title="Rasterizer backends", category="extension", requires=("torch",),
       probes=("rasterizer",), cache=("site", "driver", "env", "build"), cpu_blocker=True, fm=("FM01", "FM11", "FM39"),
       symptoms=("ImportError: No module named 'standard_rasterize_cuda'",
                 "Error building extension 'standard_rasterize_cuda'"),
       cause="DECA's default rasterizer is a CUDA-only JIT extension; when it cannot build there is no fallback.",
       fix="decaenv picks a backend that works here (compiled CPU/CUDA extension, pytorch3d, or pure torch).")
def check_rasterizer(ctx) -> CheckResult:
    """Which rasterizer backends are usable, the automatic choice per device, the compiled extension's state."""
    info = ctx.section("rasterizer")
    backends = info.get("backends", {})
    choice = {d: n for d, n in info.get("choice", {}).items() if n}
    usable = [n for n, b in backends.items() if b.get("usable")]
    details = [f"{name}: {'usable' if b.get('usable') else 'not usable'}"
               + (f" — {b['reason']}" if b.get("reason") else "") for name, b in backends.items()]
    details += [f"auto on {d}: {n} ({info.get('reasons', {}).get(d, '')})" for d, n in choice.items()]
    ext = info.get("extension") or {}
    data = {"usable": usable, "choice": choice, "extension": ext.get("summary")}
    if not usable:
        return fail("no usable rasterizer backend", details, data=data,
                    remediation=fix_it("Reinstall decaenv; the pure-torch rasterizer needs only torch.",
                                       hints.pip_install(python_cmd(ctx), "decaenv", extra="--force-reinstall")))
    summary = "; ".join(f"{device.upper()}: {BACKEND_NAMES.get(name, name)}" for device, name in choice.items())
    if ext:
        details.append(f"compiled extension: {ext.get('summary')} (builds in {ext.get('build_root')})")
        last = ext.get("last_error")
        if last and last.get("cause"):
            details.append(f"last `decaenv build` failed: {last['cause']} — {last.get('fix')} (log: {last.get('log')})")
        if ext.get("build_in_progress"):
            details.append(f"a build is running: {ext['build_in_progress']}")
    broken = [v for v in (ext.get("variants") or {}).values() if v.get("built") and not v.get("usable")]
    if broken or (ext.get("built") and ext.get("load_error")):
        why = broken[0]["problem"] if broken else ext["load_error"]
        return warn(f"{summary}; the compiled rasterizer is not usable: {why}", details, data=data,
                    fixes=(FixAction("build-rasterizer", "rebuild the compiled rasterizer", {}),),
                    remediation=fix_it("Rebuild it for these sources and this torch.", "decaenv build"))
    if ext and not ext.get("built") and not ext.get("build_in_progress"):
        return ok(f"{summary} (build the faster compiled rasterizer: `decaenv build`)", details, data=data,
                  fixes=(FixAction("build-rasterizer", "build the compiled rasterizer (`decaenv build`)", {}),))
    return ok(summary or f"usable: {', '.join(usable)}", details, data=data)


@check("rasterizer-build", title="Rasterizer build probe", category="extension", requires=("torch",),
       slow=True, probes=("build",), cache=("python", "torchpkg", "toolchain", "env", "csrc"),
       fm=("FM01", "FM02", "FM03", "FM04", "FM05", "FM07", "FM08", "FM10"),
       symptoms=("Error building extension 'standard_rasterize_cuda'", "ninja: build stopped: subcommand failed.",
                 "error: no suitable conversion function from \"const at::DeprecatedTypeProperties\" to "
                 "\"c10::ScalarType\""),
       cause="The last line of a failed build hides the first real compiler error (C++ standard, gcc too new, "
             "removed ATen API, missing headers, CUDA_HOME on a CPU torch, ...).",
       fix="The probe compiles in a scratch folder and names the first error's cause with its fix.")
def check_build(ctx) -> CheckResult:
    """Compile and load an extension in a scratch folder (CPU; CUDA when possible) and diagnose failures."""
    if ctx.no_build:
        return skip("not run (--no-build)")
    cxx = ctx.result("cxx-compiler")
    if cxx is not None and "no C++ compiler" in cxx.summary:
        return skip("no C++ compiler (see cxx-compiler)")
    info = ctx.section("build")
    results = [r for r in (info.get("cpu"), info.get("cuda")) if r]
    data = {"sources": info.get("sources"), "cuda_skipped": info.get("cuda_skipped")}
    details = [f"sources: {info.get('sources')}", f"compiler: {info.get('compiler')}"]
    failed = []
    for r in results:
        data[r["target"]] = "ok" if r.get("ok") else "failed"
        details.append(f"{r['target']}: {'built and ran' if r.get('ok') else 'FAILED'} in {r.get('seconds', 0):.0f} s")
        if not r.get("ok"):
            failed.append(r)
    if info.get("cuda_skipped"):
        details.append(f"cuda: not attempted ({info['cuda_skipped']})")
    details += [f"{r['target']}: {r['verification']}" for r in results if r.get("verification")]
    if not failed:
        targets = " and ".join(r["target"].upper() for r in results)
        verb = "extensions build and run" if len(results) > 1 else "extension builds and runs"
        return ok(f"{targets} {verb} ({sum(r.get('seconds', 0) for r in results):.0f} s)", details, data=data)
    first = failed[0]
    cause_id, cause, fix, first_error, fm = _diagnosis(first)
    data.update({"cause": cause_id, "first_error": first_error})
    target = first["target"].upper()
    summary = (f"the {target} extension does not build: {cause}" if cause
               else f"the {target} extension does not build ({first_error or first.get('error', '')[:160]})")
    details += [f"first error: {first_error}"] + first.get("log", "").strip().splitlines()[-15:]
    return warn(summary + "; the pure-torch rasterizer is used instead", details, data=data, fm=fm,
                remediation=fix_it(fix or "Read the first error above; rerun with -v for the log tail."))


def _diagnosis(entry: dict):
    """(cause id, cause, fix, first error line, FM ids) of a failed build: the builder's own diagnosis, else
    decaenv's build-failure classifier on the entry's log and error."""
    from decaenv.runtime.rasterizer.diagnose import diagnose_build_output

    given = entry.get("diagnosis")
    if given and given.get("cause_id") not in (None, "unknown"):
        fm = (given["failure_mode"],) if given.get("failure_mode") else ()
        return given["cause_id"], given.get("cause"), given.get("fix"), given.get("first_error"), fm
    found = diagnose_build_output(entry.get("log", "") + "\n" + entry.get("error", ""))
    if found.cause_id == "unknown":
        first = (given or {}).get("first_error") or found.first_error
        return None, None, None, first, ()
    fm = (found.failure_mode,) if found.failure_mode else ()
    return found.cause_id, found.cause, found.fix, found.first_error, fm


@check("pytorch3d", title="pytorch3d (optional)", category="extension", requires=("torch",),
       probes=("pytorch3d",), cache=("site", "driver"), fm=("FM25", "FM26", "FM27", "FM28"),
       symptoms=("ModuleNotFoundError: No module named 'pytorch3d.structures'",
                 "undefined symbol: _ZNK2at6Tensor7is_cudaEv",
                 "RuntimeError: Not compiled with GPU support", "No module named 'iopath'"),
       cause="pytorch3d has no wheels for current torch/Python on PyPI; builds go stale when torch changes.",
       fix="decaenv does not need pytorch3d; remove a broken build or rebuild it against the installed torch.")
def check_pytorch3d(ctx) -> CheckResult:
    """pytorch3d: importable, ABI matching torch, rasterizing on CPU and (if present) CUDA."""
    info = ctx.section("pytorch3d")
    if not info.get("installed"):
        return ok("not installed (optional backend; decaenv does not need it)", data={"installed": False})
    version = info.get("version") or "?"
    py = python_cmd(ctx)
    remove = f"{hints.quote(py)} -m pip uninstall pytorch3d"
    for part in ("import", "ext", "structures", "renderer"):
        entry = info.get(part)
        if entry and not entry.get("importable"):
            error = entry.get("error", "")
            if "undefined symbol" in error:
                return warn(f"pytorch3d {version} was built against another torch: {error}", data={"installed": True},
                            fm=("FM26",), remediation=fix_it("Rebuild pytorch3d against this torch, or remove it "
                                                             "(decaenv does not need it).", remove))
            return warn(f"pytorch3d {version} fails to import ({part}): {error}", data={"installed": True},
                        remediation=fix_it("Install its missing dependencies (fvcore, iopath) or remove it.",
                                           hints.pip_install(py, "iopath", "fvcore"), remove))
    data = {"installed": True, "version": version, "cpu": info.get("cpu"), "cuda": info.get("cuda")}
    if info.get("cpu") != "ok":
        return warn(f"pytorch3d {version} imports but cannot rasterize on the CPU: {info.get('cpu')}", data=data,
                    remediation=fix_it("Rebuild or remove pytorch3d.", remove))
    if info.get("cuda") not in (None, "ok"):
        return warn(f"pytorch3d {version} cannot rasterize CUDA tensors: {info.get('cuda')}", data=data, fm=("FM27",),
                    remediation=fix_it("Rebuild it with FORCE_CUDA=1 and a CUDA toolkit, or let decaenv use "
                                       "another backend on the GPU.", remove))
    return ok(f"pytorch3d {version}: rasterizes on CPU{' and CUDA' if info.get('cuda') == 'ok' else ''}", data=data)

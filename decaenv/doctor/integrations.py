"""The doctor's seams to the other parts of decaenv: rasterizer backends and build, compatibility shims,
the data manifest and its verification, fetching.

Each function returns plain data and degrades to `{"api": False, "reason": ...}` (or None) when the part it
talks to is not installed, so the doctor works in every build of decaenv. Functions used inside the probe
worker (`rasterizer_status`, `patches_status`, `rasterizer_build_probe`) may import torch; the others must not.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, Optional


def _missing(module: str, exc: BaseException) -> Dict[str, Any]:
    return {"api": False, "reason": f"{module} is not part of this decaenv ({type(exc).__name__}: {exc})"}


# -- rasterizer (worker side) -------------------------------------------------------------------------------
def rasterizer_status() -> Dict[str, Any]:
    """Usable rasterizer backends and the automatic choice per device.

    Returns:
        {"api": bool, "backends": {name: {"usable": bool, "reason": str}}, "choice": {"cpu": name, "cuda": name}}
        with names "cuda-ext", "cpu-ext", "pytorch3d", "torch" (pure torch).
    """
    import torch

    try:
        module = importlib.import_module("decaenv.runtime.rasterizer")
    except ImportError as exc:
        status = _missing("decaenv.runtime.rasterizer", exc)
        status["backends"] = {"torch": {"usable": True, "reason": "pure torch (always available with torch)"}}
        status["choice"] = {"cpu": "torch", "cuda": "torch" if torch.cuda.is_available() else None}
        return status
    return _describe_rasterizer(module, torch)


def _describe_rasterizer(module: Any, torch: Any) -> Dict[str, Any]:
    backends: Dict[str, Dict[str, Any]] = {}
    available = getattr(module, "available_backends", None)
    listed = available() if callable(available) else {}
    if isinstance(listed, dict):
        for name, value in listed.items():
            usable = bool(value if not isinstance(value, dict) else value.get("usable", True))
            reason = value.get("reason", "") if isinstance(value, dict) else str(value)
            backends[str(name)] = {"usable": usable, "reason": reason}
    else:
        for name in listed or ():
            backends[str(name)] = {"usable": True, "reason": ""}
    status = getattr(module, "extension_status", None)
    ext = status() if callable(status) else None
    choice: Dict[str, Optional[str]] = {}
    choose = getattr(module, "choose_backend", None)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        if callable(choose):
            picked = choose(device, "auto")
            name = picked[0] if isinstance(picked, (tuple, list)) else picked
            choice[device] = str(getattr(name, "name", name))
    return {"api": True, "backends": backends, "choice": choice,
            "extension": ext if isinstance(ext, (dict, str, type(None))) else repr(ext)}


def rasterizer_build_probe(scratch: str) -> Optional[Dict[str, Any]]:
    """Build decaenv's real rasterizer sources into `scratch` (worker side), or None when the rasterizer
    package has no build API that accepts a scratch folder (the minimal probe is used instead)."""
    try:
        module = importlib.import_module("decaenv.runtime.rasterizer.build")
    except ImportError:
        return None
    probe = getattr(module, "build_probe", None)
    return probe(scratch) if callable(probe) else None


# -- compatibility shims (worker side) ----------------------------------------------------------------------
def patches_status() -> Dict[str, Any]:
    """Each shim of `decaenv.patches.registry`: id, reason, link, needed (its predicate here), active."""
    try:
        registry = importlib.import_module("decaenv.patches.registry")
    except ImportError as exc:
        return _missing("decaenv.patches", exc)
    rows = []
    for patch in _iter_patches(registry):
        row = {"id": str(getattr(patch, "id", patch)), "reason": str(getattr(patch, "reason", "")),
               "link": getattr(patch, "link", None)}
        try:
            applies = getattr(patch, "applies", None)
            row["needed"] = bool(applies()) if callable(applies) else None
        except Exception as exc:  # noqa: BLE001 - a broken predicate is reported, not fatal
            row["needed"], row["error"] = None, f"{type(exc).__name__}: {exc}"
        active = getattr(registry, "is_active", None)
        row["active"] = bool(active(row["id"])) if callable(active) else None
        rows.append(row)
    return {"api": True, "patches": rows}


def _iter_patches(registry: Any):
    for name in ("PATCHES", "REGISTRY", "patches"):
        value = getattr(registry, name, None)
        if value is not None:
            return list(value.values()) if isinstance(value, dict) else list(value)
    for name in ("all_patches", "all", "list_patches"):
        func = getattr(registry, name, None)
        if callable(func):
            return list(func())
    return []


# -- data manifest (doctor process; no torch) ---------------------------------------------------------------
def manifest_status(data_dir: str) -> Dict[str, Any]:
    """Verify the manifest's files in `data_dir` with the fetch package's own verification.

    Returns:
        {"api": True, "files": [{"id", "dest", "status", "detail", "kind", "required"}]} or {"api": False, ...};
        status is one of present/verified/missing/size-mismatch/hash-mismatch/hash-unknown.
    """
    try:
        manifest_mod = importlib.import_module("decaenv.fetch.manifest")
    except ImportError as exc:
        return _missing("decaenv.fetch", exc)
    verify = _find_verifier()
    if verify is None:
        return {"api": False, "reason": "decaenv.fetch has no per-file verification function yet"}
    manifest = manifest_mod.load_manifest()
    files = []
    for entry in getattr(manifest, "files", manifest):
        result = verify(entry, data_dir)
        files.append(_normalise_verification(entry, result))
    return {"api": True, "files": files}


def _find_verifier():
    for module_name, func in (("decaenv.fetch.verify", "verify_file"), ("decaenv.fetch.manifest", "verify_file"),
                              ("decaenv.fetch.store", "verify_file"), ("decaenv.fetch", "verify_file")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if callable(getattr(module, func, None)):
            return getattr(module, func)
    return None


def _normalise_verification(entry: Any, result: Any) -> Dict[str, Any]:
    def pick(obj: Any, *names: str, default: Any = None) -> Any:
        for name in names:
            if isinstance(obj, dict) and name in obj:
                return obj[name]
            if hasattr(obj, name):
                return getattr(obj, name)
        return default

    status = pick(result, "status", default=result)
    status = str(getattr(status, "value", status)).replace("_", "-")
    return {"id": str(pick(entry, "id", default="?")), "dest": str(pick(entry, "dest", default="?")),
            "status": status, "detail": str(pick(result, "detail", "message", default="") or ""),
            "kind": str(pick(pick(entry, "source", default={}), "kind", default="") or ""),
            "required": bool(pick(entry, "required", default=True))}


# -- actions for --fix (doctor process) ---------------------------------------------------------------------
def fetch_files(ids, data_dir: str) -> str:
    """Fetch manifest files by id with the fetch package; returns a one-line summary."""
    try:
        module = importlib.import_module("decaenv.fetch")
    except ImportError as exc:
        raise RuntimeError(f"decaenv.fetch is not part of this decaenv ({exc})") from exc
    for name in ("fetch_files", "fetch_all", "fetch"):
        func = getattr(module, name, None)
        if callable(func):
            result = func(list(ids), data_dir=data_dir)
            return str(getattr(result, "summary", None) or f"fetched {', '.join(ids)}")
    raise RuntimeError("decaenv.fetch offers no fetch function")


def build_rasterizer(cuda: bool) -> str:
    """Build decaenv's rasterizer extension with the rasterizer package's build API; one-line summary."""
    try:
        module = importlib.import_module("decaenv.runtime.rasterizer")
    except ImportError as exc:
        raise RuntimeError(f"decaenv.runtime.rasterizer is not part of this decaenv ({exc})") from exc
    build = getattr(module, "build", None)
    if not callable(build):
        raise RuntimeError("decaenv.runtime.rasterizer offers no build()")
    result = build(cpu=True, cuda=cuda, verbose=False)
    return str(getattr(result, "summary", None) or result)

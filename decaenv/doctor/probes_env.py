"""Probe sections about the Python environment (run inside the probe worker, see `decaenv.doctor.worker`).

Each section imports what it probes *inside* the function and returns JSON-able facts shaped as its contract
in `decaenv.doctor.contracts`. Expected failures (a package missing or failing to import) are data, not
exceptions: `{"importable": False, "error": ...}`.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import sys
import time
import traceback
import warnings
from typing import Any, Dict, List, Optional, cast

from decaenv.doctor.contracts import (
    AutoPlanInfo,
    ChumpySection,
    CompatSection,
    CudaDevice,
    CudaSection,
    DecaImportsSection,
    DetectorsSection,
    FaceAlignmentSection,
    FlameSelftestSection,
    ImportInfo,
    NumpySection,
    Pytorch3dSection,
    RasterizerSection,
    RuntimePackage,
    RuntimePackagesSection,
    TorchLoadSection,
    TorchSection,
)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:1500]


def _last_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno} ({frame.line or ''})"


def _dist_version(*names: str) -> Optional[str]:
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _try_import(module: str) -> ImportInfo:
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mod = importlib.import_module(module)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and friends are import failures too
            return {
                "importable": False,
                "error": _error_text(exc),
                "where": _last_frame(exc),
                "seconds": time.perf_counter() - start,
            }
    return {
        "importable": True,
        "file": getattr(mod, "__file__", None),
        "seconds": time.perf_counter() - start,
        "version": getattr(mod, "__version__", None),
        "warnings": [f"{w.category.__name__}: {w.message}"[:300] for w in caught][:5],
    }


# -- torch ----------------------------------------------------------------------------------------------
def torch_section(common: Dict[str, Any]) -> TorchSection:
    """Import torch once: version, build, ABI, numpy interop."""
    if importlib.util.find_spec("torch") is None:
        return {"installed": False, "importable": False, "error": "No module named 'torch'"}
    info = cast(TorchSection, _try_import("torch"))
    info["installed"] = True
    if not info["importable"]:
        return info
    import torch

    info.update(
        {
            "version": torch.__version__,
            "cuda": torch.version.cuda,
            "hip": getattr(torch.version, "hip", None),
            "debug": bool(getattr(torch.version, "debug", False)),
            "git": getattr(torch.version, "git_version", None),
            "cxx11_abi": bool(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", False)),
            "include": os.path.join(os.path.dirname(torch.__file__), "include"),
            "threads": torch.get_num_threads(),
        }
    )
    try:
        import numpy

        info["numpy_interop"] = float(torch.from_numpy(numpy.arange(3.0)).sum()) == 3.0
    except BaseException as exc:  # noqa: BLE001 - a broken numpy/torch interop is the answer, not a crash
        info["numpy_interop"] = False
        info["numpy_error"] = _error_text(exc)
    try:
        info["cpu_ok"] = float((torch.ones(4) * 2).sum()) == 8.0
    except BaseException as exc:  # noqa: BLE001 - a failing CPU op is the answer, not a crash
        info["cpu_ok"], info["cpu_error"] = False, _error_text(exc)
    return info


def cuda_section(common: Dict[str, Any]) -> CudaSection:
    """CUDA as torch sees it: build, availability (and the warning when not), devices, arch list, smoke test."""
    import torch

    out: CudaSection = {
        "compiled": bool(torch.version.cuda),
        "cuda": torch.version.cuda,
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "arch_env": os.environ.get("TORCH_CUDA_ARCH_LIST"),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out["available"] = bool(torch.cuda.is_available())
        except BaseException as exc:  # noqa: BLE001 - CUDA initialisation failing is the answer, not a crash
            out["available"], out["error"] = False, _error_text(exc)
    out["warnings"] = [" ".join(str(w.message).split())[:400] for w in caught][:3]
    if not out["available"]:
        return out
    out["arch_list"] = list(torch.cuda.get_arch_list())
    out["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    devices: List[CudaDevice] = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        entry: CudaDevice = {
            "index": index,
            "name": props.name,
            "capability": [props.major, props.minor],
            "memory_gb": round(props.total_memory / 2**30, 1),
        }
        try:
            value = (torch.ones(4, device=f"cuda:{index}") * 2).sum().item()
            entry["smoke"] = "ok" if value == 8.0 else f"wrong result {value}"
        except BaseException as exc:  # noqa: BLE001 - "no kernel image is available for execution on the device"
            entry["smoke"] = _error_text(exc)
        devices.append(entry)
    out["devices"] = devices
    return out


def torch_load_section(common: Dict[str, Any]) -> TorchLoadSection:
    """What `torch.load` does by default here: weights_only or not (probed, not read from the version)."""
    import argparse
    import inspect

    import torch

    out: TorchLoadSection = {
        "signature_default": None,
        "env_force": os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD"),
        "env_force_no": os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"),
    }
    try:
        param = inspect.signature(torch.load).parameters.get("weights_only")
        out["has_weights_only"] = param is not None
        out["signature_default"] = repr(param.default) if param is not None else None
    except (TypeError, ValueError):
        out["has_weights_only"] = False
    buf = io.BytesIO()
    torch.save({"E_flame": {"w": torch.zeros(2)}, "global_step": 3}, buf)
    try:
        buf.seek(0)
        kwargs = {"weights_only": True} if out["has_weights_only"] else {}
        torch.load(buf, map_location="cpu", **kwargs)
        out["safe_load_ok"] = True
    except BaseException as exc:  # noqa: BLE001 - the refusal (or any error) of the safe load is the answer
        out["safe_load_ok"], out["safe_load_error"] = False, _error_text(exc)
    buf = io.BytesIO()
    torch.save({"args": argparse.Namespace(x=1)}, buf)
    buf.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.load(buf, map_location="cpu")
            out["default_weights_only"] = False
        except BaseException as exc:  # noqa: BLE001 - the UnpicklingError is the answer
            out["default_weights_only"] = "weights" in str(exc).lower() or "unpickl" in type(exc).__name__.lower()
            out["default_error"] = _error_text(exc)[:300]
    return out


def pytorch3d_section(common: Dict[str, Any]) -> Pytorch3dSection:
    """pytorch3d: installed, importable (ABI), submodules (iopath), CPU and CUDA rasterization."""
    if importlib.util.find_spec("pytorch3d") is None:
        return {"installed": False}
    out: Pytorch3dSection = {"installed": True, "version": _dist_version("pytorch3d")}
    out["import"] = _try_import("pytorch3d")
    if not out["import"]["importable"]:
        return out
    out["version"] = out["version"] or out["import"].get("version")
    out["ext"] = _try_import("pytorch3d._C")
    out["renderer"] = _try_import("pytorch3d.renderer")
    out["structures"] = _try_import("pytorch3d.structures")
    if not (out["ext"]["importable"] and out["renderer"]["importable"] and out["structures"]["importable"]):
        return out
    import torch

    out["cpu"] = _p3d_rasterize("cpu")
    out["cuda"] = _p3d_rasterize("cuda") if torch.cuda.is_available() else None
    return out


def _p3d_rasterize(device: str) -> str:
    try:
        import torch
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
        from pytorch3d.structures import Meshes

        verts = torch.tensor([[[-0.5, -0.5, 1.0], [0.5, -0.5, 1.0], [0.0, 0.5, 1.0]]], device=device)
        faces = torch.tensor([[[0, 1, 2]]], device=device)
        pix_to_face = rasterize_meshes(Meshes(verts=verts, faces=faces), image_size=8)[0]
        return "ok" if int((pix_to_face >= 0).sum()) > 0 else "empty"
    except BaseException as exc:  # noqa: BLE001 - "Not compiled with GPU support"
        return _error_text(exc)


def rasterizer_section(common: Dict[str, Any]) -> RasterizerSection:
    """decaenv's rasterizer backends, through the rasterizer package's own API (when it is installed)."""
    from decaenv.doctor import subsystems

    return subsystems.rasterizer_status()


def compat_section(common: Dict[str, Any]) -> CompatSection:
    """decaenv's compatibility shims (needed / not needed / active), through `decaenv.patches.registry`."""
    from decaenv.doctor import subsystems

    return subsystems.patches_status()


# -- face_alignment ---------------------------------------------------------------------------------------
def face_alignment_section(common: Dict[str, Any]) -> FaceAlignmentSection:
    """face_alignment: version, import, LandmarksType API, FaceAlignment defaults, cached hub weights."""
    spec = importlib.util.find_spec("face_alignment")
    if spec is None:
        return {"installed": False}
    out: FaceAlignmentSection = {"installed": True, "version": _dist_version("face-alignment", "face_alignment")}
    package_dir = os.path.dirname(spec.origin or "")
    out["urls"] = _weight_urls(package_dir)
    hub_dir = out["hub_dir"] = _hub_checkpoints_dir()
    try:
        out["hub_files"] = sorted(os.listdir(hub_dir)) if os.path.isdir(hub_dir) else []
    except OSError:
        out["hub_files"] = []
    out["import"] = _try_import("face_alignment")
    if not out["import"]["importable"]:
        return out
    import inspect

    import face_alignment

    members = [m.name for m in getattr(face_alignment, "LandmarksType", [])]
    out["landmarks_members"] = members
    try:
        params = inspect.signature(face_alignment.FaceAlignment.__init__).parameters
        out["defaults"] = {k: repr(params[k].default) for k in ("device", "compile", "flip_input") if k in params}
    except (TypeError, ValueError, AttributeError):
        out["defaults"] = {}
    return out


def detectors_section(common: Dict[str, Any]) -> DetectorsSection:
    """What `decaenv reconstruct --detector auto` will use here, from the detectors' own availability probes
    (nothing is loaded)."""
    try:
        from decaenv.runtime.detectors import auto_plan, availability
    except ImportError as exc:
        return {"api": False, "reason": f"decaenv's detectors do not import here ({type(exc).__name__}: {exc})"}
    data_dir = common.get("data_dir")  # MTCNN's weights are data files (mtcnn/ in the data dir)
    return {
        "api": True,
        "plan": cast(AutoPlanInfo, auto_plan(data_dir=data_dir).to_json()),
        "available": {name: {"usable": usable, "reason": why} for name, usable, why in availability(data_dir)},
    }


def deca_imports_section(common: Dict[str, Any]) -> DecaImportsSection:
    """The third-party modules DECA's demo imports at start-up (in the checkout `common["deca_dir"]`), and which
    of them this interpreter cannot find (found by `find_spec`, nothing is imported)."""
    from decaenv.doctor.deca_source import demo_imports

    root = common.get("deca_dir")
    if not root:
        return {"modules": [], "missing": []}
    modules = demo_imports(root)
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return {"modules": modules, "missing": missing}


def _weight_urls(package_dir: str) -> List[str]:
    import re

    urls = set()
    for root, _dirs, files in os.walk(package_dir):
        for name in files:
            if name.endswith(".py"):
                try:
                    with open(os.path.join(root, name), encoding="utf-8", errors="replace") as fh:
                        urls.update(re.findall(r"https?://[^\s'\"]+\.(?:pth\.tar|pth|zip|pt)\b", fh.read()))
                except OSError:
                    continue
    return sorted(urls)


def _hub_checkpoints_dir() -> str:
    home = os.environ.get("TORCH_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(cache, "torch")
    return os.path.join(home, "hub", "checkpoints")


# -- numpy, chumpy, FLAME loader, runtime packages ----------------------------------------------------------
_NUMPY_ALIASES = ("bool", "int", "float", "complex", "object", "unicode", "str")


def numpy_section(common: Dict[str, Any]) -> NumpySection:
    """numpy: version, import, which of chumpy's `from numpy import bool, int, ...` names still exist."""
    out = cast(NumpySection, _try_import("numpy"))
    if not out["importable"]:
        return out
    import numpy

    out["version"] = numpy.__version__
    out["aliases_missing"] = [name for name in _NUMPY_ALIASES if name not in numpy.__dict__]
    return out


def flame_selftest_section(common: Dict[str, Any]) -> FlameSelftestSection:
    """Prove decaenv reads a chumpy-style FLAME pickle here with chumpy made unimportable."""
    import numpy as np

    from decaenv.loaders.flame import load_flame
    from decaenv.loaders.legacy_pickle import ChumpyCh, dumps

    saved = {m: sys.modules.pop(m) for m in [m for m in sys.modules if m == "chumpy" or m.startswith("chumpy.")]}
    # A None entry in sys.modules makes `import chumpy` raise ImportError (the import system's own convention).
    sys.modules["chumpy"] = None  # type: ignore[assignment]  # typeshed omits None, a valid sys.modules value
    sys.modules["chumpy.ch"] = None  # type: ignore[assignment]  # (see above)
    try:
        return _read_tiny_flame(np, load_flame, ChumpyCh, dumps)
    finally:  # later sections (the chumpy probe) must see the real import system again
        for name in ("chumpy", "chumpy.ch"):
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _read_tiny_flame(np, load_flame, ChumpyCh, dumps) -> FlameSelftestSection:
    import tempfile

    model = _tiny_flame(np, ChumpyCh)
    impersonate = {id(ChumpyCh): ("chumpy.ch", "Ch"), id(_FakeCsc): ("scipy.sparse.csc", "csc_matrix")}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="decaenv-doctor-") as tmp:
        path = os.path.join(tmp, "generic_model.pkl")
        with open(path, "wb") as fh:
            fh.write(dumps(model, protocol=2, impersonate=impersonate))
        try:
            loaded = load_flame(path)
        except BaseException as exc:  # noqa: BLE001 - any failure to read the tiny FLAME back is the answer
            return {"ok": False, "error": _error_text(exc), "where": _last_frame(exc)}
    same = bool(
        np.array_equal(loaded.shapedirs, model["shapedirs"].x)
        and np.array_equal(loaded.J_regressor, model["J_regressor"].dense)
    )
    return {
        "ok": same,
        "seconds": time.perf_counter() - start,
        "chumpy_imported": sys.modules.get("chumpy") is not None,
        "error": None if same else "arrays read back differ from those written",
    }


class _FakeCsc:
    """Written as `scipy.sparse.csc.csc_matrix` (scipy is not needed to write or read it)."""

    def __init__(self, dense):
        import numpy as np

        rows, cols = dense.shape
        data, indices, indptr = [], [], [0]
        for c in range(cols):
            for r in range(rows):
                if dense[r, c] != 0:
                    data.append(dense[r, c])
                    indices.append(r)
            indptr.append(len(data))
        self.dense = dense
        self.__dict__.update(
            {
                "data": np.array(data),
                "indices": np.array(indices, dtype=np.int32),
                "indptr": np.array(indptr, dtype=np.int32),
                "_shape": (rows, cols),
                "maxprint": 50,
            }
        )

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "dense"}


def _tiny_flame(np, chumpy_ch) -> Dict[str, Any]:
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    regressor = np.array([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    return {
        "v_template": v,
        "shapedirs": chumpy_ch(np.arange(36, dtype=np.float64).reshape(4, 3, 3)),
        "posedirs": np.zeros((4, 3, 36)),
        "J_regressor": _FakeCsc(regressor),
        "weights": np.array([[1.0, 0], [1, 0], [0, 1], [0, 1]]),
        "kintree_table": np.array([[4294967295, 0], [0, 1]], dtype=np.int64),
        "f": np.array([[0, 1, 2], [0, 2, 3]], dtype=np.uint32),
        "bs_style": "lbs",
    }


def runtime_packages_section(common: Dict[str, Any]) -> RuntimePackagesSection:
    """The runtime extra's packages (and gdown for fetch): installed version and a real import each."""
    out: Dict[str, RuntimePackage] = {}
    for module, dist in (("scipy", "scipy"), ("skimage", "scikit-image"), ("PIL", "pillow"), ("gdown", "gdown")):
        if importlib.util.find_spec(module) is None:
            out[module] = {"installed": False, "dist": dist}
            continue
        entry = cast(RuntimePackage, _try_import(module))
        entry.update({"installed": True, "dist": dist, "version": _dist_version(dist) or entry.get("version")})
        out[module] = entry
    return out


def chumpy_section(common: Dict[str, Any]) -> ChumpySection:
    """chumpy: installed? importable? if not, the exact cause (getargspec, numpy alias, other)."""
    if importlib.util.find_spec("chumpy") is None:
        return {"installed": False}
    out = cast(ChumpySection, _try_import("chumpy"))
    out["installed"] = True
    out["version"] = _dist_version("chumpy", "chumpy-fixed", "chumpy-fork") or out.get("version")
    if not out["importable"]:
        error = out.get("error", "")
        out["cause"] = (
            "getargspec"
            if "getargspec" in error
            else "numpy-alias"
            if "from 'numpy'" in error or "has no attribute" in error and "numpy" in error
            else "other"
        )
    return out


SECTIONS = {
    "torch": torch_section,
    "cuda": cuda_section,
    "torch-load": torch_load_section,
    "rasterizer": rasterizer_section,
    "pytorch3d": pytorch3d_section,
    "compat": compat_section,
    "face-alignment": face_alignment_section,
    "detectors": detectors_section,
    "deca-imports": deca_imports_section,
    "numpy": numpy_section,
    "flame-selftest": flame_selftest_section,
    "runtime-packages": runtime_packages_section,
    "chumpy": chumpy_section,
}

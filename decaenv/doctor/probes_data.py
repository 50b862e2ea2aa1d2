"""Probe sections that load the user's data files (run inside the probe worker, one process per file kind)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List

from decaenv.deca_layout import CHECKPOINT_FILE, DATA_FILES, FLAME_FILE, FLAME_NPZ_FILE, has_flame

def _error(exc: BaseException) -> Dict[str, Any]:
    return {"type": type(exc).__name__, "message": " ".join(str(exc).split())[:1500],
            "hint": getattr(exc, "hint", None)}


def flame_load_section(common: Dict[str, Any]) -> Dict[str, Any]:
    """Load the FLAME file the runtime would read, through decaenv's own loader, and describe it."""
    data_dir = Path(common["data_dir"])
    if not has_flame(data_dir):
        return {"loaded": False, "absent": True}  # nothing to load: numpy is not even imported
    from decaenv.loaders.flame import deca_compatibility, load_flame, npz_matches_source, preferred_flame_file

    path = preferred_flame_file(data_dir)
    out: Dict[str, Any] = {"file": str(path)}
    start = time.perf_counter()
    try:
        model = load_flame(path)
    except BaseException as exc:  # noqa: BLE001 - DataError/UnsafeContentError and anything else: data
        out.update({"loaded": False, "error": _error(exc), "seconds": time.perf_counter() - start})
        return out
    out.update({
        "loaded": True, "seconds": time.perf_counter() - start, "kind": model.kind,
        "vertices": int(model.v_template.shape[0]), "faces": int(model.f.shape[0]),
        "components": int(model.n_components), "joints": int(model.J_regressor.shape[0]),
        "dtype": str(model.v_template.dtype), "incompatible": deca_compatibility(model),
    })
    out["template_faces"] = _template_faces_match(data_dir / DATA_FILES["topology_path"], model.f)
    pkl, npz = data_dir / FLAME_FILE, data_dir / FLAME_NPZ_FILE
    if pkl.is_file() and npz.is_file():
        out["npz_matches_pickle"] = npz_matches_source(npz, pkl)
    return out


def _template_faces_match(obj_path: Path, faces) -> Any:
    """Whether head_template.obj's triangles are FLAME's (None when the obj is absent or unreadable).

    DECA's landmark embedding and UV layout index the faces of FLAME 2020; a FLAME file from another
    topology loads and runs, but puts the landmarks and textures on the wrong triangles.
    """
    if not obj_path.is_file():
        return None
    import numpy as np

    from decaenv.meshio import read_obj

    try:
        template = np.asarray(read_obj(obj_path).f)
    except Exception:  # noqa: BLE001 - a damaged obj is the data-files check's finding, not this one's
        return None
    faces = np.asarray(faces)
    return bool(template.shape == faces.shape and np.array_equal(template, faces))


def checkpoint_load_section(common: Dict[str, Any]) -> Dict[str, Any]:
    """Load `deca_model.tar` with `weights_only=True` on the CPU and compare it with DECA's key layout."""
    path = Path(common["data_dir"]) / CHECKPOINT_FILE
    if not path.is_file():
        return {"loaded": False, "absent": True}
    import torch

    from decaenv.deca_layout import NETWORK_KEYS, checkpoint_layout

    start = time.perf_counter()
    kwargs: Dict[str, Any] = {"map_location": "cpu", "weights_only": True}
    try:
        try:
            checkpoint = torch.load(str(path), mmap=True, **kwargs)
        except TypeError:  # torch < 2.1: no mmap
            checkpoint = torch.load(str(path), **kwargs)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            checkpoint = torch.load(str(path), **kwargs)  # legacy (non-zip) files cannot be mmapped
    except BaseException as exc:  # noqa: BLE001
        return {"loaded": False, "error": _error(exc), "seconds": time.perf_counter() - start}
    out: Dict[str, Any] = {"loaded": True, "seconds": time.perf_counter() - start}
    if not isinstance(checkpoint, dict):
        out["top_type"] = type(checkpoint).__name__
        return out
    out["top_keys"] = sorted(str(k) for k in checkpoint)[:20]
    layout = checkpoint_layout()
    networks: Dict[str, Any] = {}
    for name in NETWORK_KEYS:
        networks[name] = _compare(checkpoint.get(name), layout[name], torch)
    out["networks"] = networks
    return out


def _compare(state: Any, expected: Dict[str, tuple], torch) -> Dict[str, Any]:
    if state is None:
        return {"present": False}
    if not isinstance(state, dict):
        return {"present": True, "type": type(state).__name__}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong: List[str] = []
    non_tensor: List[str] = []
    for key, shape in expected.items():
        value = state.get(key)
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            non_tensor.append(key)
        elif tuple(value.shape) != tuple(shape):
            wrong.append(f"{key} {tuple(value.shape)} (expected {tuple(shape)})")
    prefixed = bool(state) and all(str(k).startswith("module.") for k in state)
    return {"present": True, "keys": len(state), "expected": len(expected), "missing": missing[:10],
            "missing_count": len(missing), "unexpected": unexpected[:10], "unexpected_count": len(unexpected),
            "wrong_shapes": wrong[:10], "wrong_count": len(wrong), "non_tensor": non_tensor[:5],
            "module_prefix": prefixed}


SECTIONS = {
    "flame-load": flame_load_section,
    "checkpoint-load": checkpoint_load_section,
}

"""Load, validate and convert the FLAME model (`generic_model.pkl` / `.npz`) without chumpy.

FLAME 2020's pickle holds `shapedirs` as a chumpy object and `J_regressor` as a scipy sparse matrix;
`decaenv.loaders.safe_pickle` reads both with numpy only. `convert_to_npz` writes the same arrays to a
plain `.npz` (no pickle at all), which the runtime prefers when it is newer than the pickle and valid.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from decaenv._typing import StrPath
from decaenv.errors import DataError
from decaenv.loaders._standins import ChumpyStandIn, SparseStandIn
from decaenv.loaders.safe_pickle import load_pickle

log = logging.getLogger("decaenv")

FLAME_VERTICES = 5023
FLAME_FACES = 9976
FLAME_JOINTS = 5
SHAPE_SPACE_DIM = 300  # identity components in shapedirs, followed by the expression components
MIN_COMPONENTS = 350  # DECA uses shapedirs[..., :100] and [..., 300:350]
REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
NPZ_FORMAT = "decaenv-flame-npz-1"


@dataclass(frozen=True)
class FlameModel:
    """FLAME's arrays as numpy, in the file's precision (DECA casts to float32 itself).

    Attributes:
        v_template: (V, 3) rest vertices. shapedirs: (V, 3, K) shape then expression directions (K = 400 for
        FLAME 2020). posedirs: (V, 3, 36) pose-corrective directions. J_regressor: (J, V) dense joint regressor.
        weights: (V, J) skinning weights. kintree_table: (2, J) int64 (row 0 = parents; root holds 2**32-1 or -1).
        f: (F, 3) int64 triangles. kind: "generic", "female", "male", "flame2023" or "unknown" (from the file
        name: the arrays cannot tell generic from female/male). source: the file read.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    kintree_table: np.ndarray
    f: np.ndarray
    kind: str
    source: Path

    @property
    def n_components(self) -> int:
        return int(self.shapedirs.shape[2])

    def arrays(self) -> Dict[str, np.ndarray]:
        """The seven arrays by FLAME's key names."""
        return {k: getattr(self, k) for k in REQUIRED}


def kind_from_name(path: Path) -> str:
    """FLAME variant from the file name (FLAME 2020 ships generic/female/male; FLAME 2023 is separate)."""
    name = path.name.lower()
    if "2023" in name:
        return "flame2023"
    if "female" in name:
        return "female"
    if "male" in name:
        return "male"
    if "generic" in name or name.startswith("flame"):
        return "generic"
    return "unknown"


_INTEGER_KEYS = ("f", "kintree_table")


def _to_array(value: Any, key: str, source: Path) -> np.ndarray:
    """A numeric ndarray from a pickled/npz value (chumpy and sparse stand-ins included)."""
    if isinstance(value, ChumpyStandIn):
        arr = value.array
    elif isinstance(value, SparseStandIn):
        arr = value.toarray()
    elif hasattr(value, "toarray") and callable(value.toarray):  # a real scipy matrix (e.g. from an npz user)
        arr = np.asarray(value.toarray())
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:
            raise DataError(
                f"FLAME model {source}: entry {key!r} is not an array ({type(value).__name__})",
                hint="use an official FLAME 2020 file",
                path=source,
            ) from exc
    allowed = "iu" if key in _INTEGER_KEYS else "iuf"
    if arr.dtype.kind not in allowed:
        expected = "integers" if key in _INTEGER_KEYS else "numbers"
        raise DataError(
            f"FLAME model {source}: entry {key!r} holds {arr.dtype} values, expected {expected}",
            hint="use an official FLAME 2020 file",
            path=source,
        )
    return arr


def from_mapping(data: Mapping[str, Any], source: Path, kind: Optional[str] = None) -> FlameModel:
    """Build and validate a `FlameModel` from FLAME's key → value mapping (pickle dict or npz).

    Raises:
        DataError: a key is missing or an array has the wrong shape.
    """
    if not isinstance(data, Mapping):
        raise DataError(
            f"FLAME model {source} holds a {type(data).__name__}, not FLAME's dictionary",
            hint="use FLAME 2020's generic_model.pkl",
            path=source,
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise DataError(
            f"FLAME model {source} lacks {', '.join(missing)}",
            hint="use FLAME 2020's generic_model.pkl (from FLAME2020.zip)",
            path=source,
        )
    arrays = {k: _to_array(data[k], k, source) for k in REQUIRED}
    arrays["f"] = arrays["f"].astype(np.int64)
    arrays["kintree_table"] = arrays["kintree_table"].astype(np.int64)
    model = FlameModel(**arrays, kind=kind or kind_from_name(source), source=source)
    problems = structural_problems(model)
    if problems:
        raise DataError(
            f"FLAME model {source} is not usable: {'; '.join(problems)}",
            hint="use FLAME 2020's generic_model.pkl",
            path=source,
        )
    return model


def structural_problems(model: FlameModel) -> List[str]:
    """Shape/consistency problems that make a model unusable (empty list when fine)."""
    problems = []
    v = model.v_template
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0:
        return [f"v_template has shape {v.shape}, expected (V, 3) with V > 0"]
    n = v.shape[0]
    checks = [
        ("shapedirs", model.shapedirs.ndim == 3 and model.shapedirs.shape[:2] == (n, 3), f"({n}, 3, K)"),
        ("posedirs", model.posedirs.shape == (n, 3, 36), f"({n}, 3, 36)"),
        ("J_regressor", model.J_regressor.ndim == 2 and model.J_regressor.shape[1] == n, f"(J, {n})"),
        ("weights", model.weights.ndim == 2 and model.weights.shape[0] == n, f"({n}, J)"),
        ("f", model.f.ndim == 2 and model.f.shape[1] == 3 and model.f.shape[0] > 0, "(F, 3) with F > 0"),
    ]
    for key, ok, expected in checks:
        if not ok:
            problems.append(f"{key} has shape {getattr(model, key).shape}, expected {expected}")
    if problems:
        return problems
    joints = model.J_regressor.shape[0]
    if joints == 0 or model.weights.shape[1] != joints or model.kintree_table.shape != (2, joints):
        problems.append(
            f"joint counts disagree (J_regressor {joints}, weights {model.weights.shape[1]}, "
            f"kintree_table {model.kintree_table.shape})"
        )
    if model.f.min() < 0 or model.f.max() >= n:
        problems.append("face indices out of range")
    if not all(
        np.isfinite(getattr(model, k)).all() for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")
    ):
        problems.append("non-finite values")
    return problems


def deca_compatibility(model: FlameModel) -> List[str]:
    """Reasons this model cannot be used with DECA's released checkpoint (empty when compatible)."""
    reasons = []
    if model.v_template.shape[0] != FLAME_VERTICES or model.f.shape[0] != FLAME_FACES:
        reasons.append(
            f"{model.v_template.shape[0]} vertices / {model.f.shape[0]} faces, DECA needs "
            f"{FLAME_VERTICES} / {FLAME_FACES} (FLAME topology)"
        )
    if model.n_components < MIN_COMPONENTS:
        reasons.append(f"{model.n_components} shape+expression components, DECA needs at least {MIN_COMPONENTS}")
    if model.J_regressor.shape[0] != FLAME_JOINTS:
        reasons.append(f"{model.J_regressor.shape[0]} joints, FLAME has {FLAME_JOINTS}")
    if model.kind == "flame2023":
        reasons.append("FLAME 2023 differs from FLAME 2020, which DECA's checkpoint was trained with")
    return reasons


def load_flame(path: StrPath, kind: Optional[str] = None) -> FlameModel:
    """Read a FLAME model from `.pkl` (chumpy-free) or decaenv's `.npz` and validate its structure.

    The format is recognised from the content (an npz is a zip archive), not from the file name.

    Args:
        path: `generic_model.pkl` (FLAME 2020 pickle) or a `.npz` written by `convert_to_npz`.
        kind: override the variant guessed from the file name.
    Raises:
        DataError / UnsafeContentError: unreadable, refused or structurally invalid.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(
            f"FLAME model {path} is a folder, not a file",
            hint="give the model file itself, e.g. FLAME2020/generic_model.pkl",
            path=path,
        )
    if not path.is_file():
        raise DataError(
            f"FLAME model {path} does not exist",
            hint="run `decaenv fetch flame` (needs a FLAME account) or `decaenv fetch --from FLAME2020.zip`",
            path=path,
        )
    if _is_zip(path):
        return _load_npz(path, kind)
    return from_mapping(load_pickle(path, "FLAME model"), path, kind)


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _read_npz(path: Path) -> Dict[str, np.ndarray]:
    """All arrays of an npz (no pickles allowed), or DataError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise DataError(
            f"FLAME model {path} is not a readable npz ({' '.join(str(exc).split())})",
            hint="convert it again: `decaenv convert flame generic_model.pkl -o generic_model.npz`",
            path=path,
        ) from exc
    except Exception as exc:
        raise DataError(
            f"FLAME model {path} is a damaged npz ({type(exc).__name__})",
            hint="convert it again: `decaenv convert flame generic_model.pkl -o generic_model.npz`",
            path=path,
        ) from exc


def _load_npz(path: Path, kind: Optional[str]) -> FlameModel:
    content = _read_npz(path)
    stored_kind = str(content.pop("decaenv_kind", "")) or None
    for key in [k for k in content if k.startswith("decaenv_")]:
        content.pop(key)
    return from_mapping(content, path, kind or stored_kind)


def sha256_file(path: os.PathLike) -> str:
    """Hex sha256 of a file (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_to_npz(src: os.PathLike, dst: os.PathLike, kind: Optional[str] = None) -> Path:
    """Convert a FLAME pickle to a pickle-free `.npz` (same arrays, bit for bit), atomically.

    The npz also records decaenv's format tag, the variant, and the sha256, size and modification time of
    the source pickle, so a stale npz (pickle replaced later) is detected by `npz_matches_source`.

    Args:
        src: the FLAME pickle (or an npz to re-write).
        dst: the npz to write; its folder is created. Nothing is left behind on failure.
        kind: override the variant guessed from the source's file name.
    Returns:
        dst.
    """
    src, dst = Path(src), Path(dst)
    before = src.stat() if src.is_file() else None
    model = load_flame(src, kind)
    digest = sha256_file(src)
    before = before or src.stat()
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            arrays: Dict[str, Any] = dict(
                model.arrays(),
                decaenv_format=np.array(NPZ_FORMAT),
                decaenv_kind=np.array(model.kind),
                decaenv_source_sha256=np.array(digest),
                decaenv_source_size=np.array(before.st_size, dtype=np.int64),
                decaenv_source_mtime_ns=np.array(before.st_mtime_ns, dtype=np.int64),
            )
            np.savez(fh, **arrays)
        os.replace(tmp, dst)
    except OSError as exc:
        raise DataError(
            f"cannot write {dst}: {exc.strerror or exc}",
            hint="choose a writable location with -o (and check the free disk space)",
            path=dst,
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst


def _npz_record(npz: Path) -> Optional[Dict[str, Any]]:
    """decaenv's bookkeeping entries of a converted npz (None when unreadable or not complete)."""
    try:
        with np.load(npz, allow_pickle=False) as data:
            if not all(k in data.files for k in REQUIRED):
                return None
            return {k: data[k][()] for k in data.files if k.startswith("decaenv_")}
    except Exception:  # noqa: BLE001 - any failure means "not a usable npz"
        return None


def npz_matches_source(npz: os.PathLike, pkl: os.PathLike) -> bool:
    """True if `npz` was converted from the current `pkl`.

    The pickle's size and modification time are compared first; only when they differ from the recorded
    ones is the pickle hashed and its sha256 compared (copies and re-extractions change the mtime only).
    """
    record = _npz_record(Path(npz))
    if not record or "decaenv_source_sha256" not in record:
        return False
    try:
        st = Path(pkl).stat()
    except OSError:
        return False
    if (
        int(record.get("decaenv_source_size", -1)) == st.st_size
        and int(record.get("decaenv_source_mtime_ns", -1)) == st.st_mtime_ns
    ):
        return True
    return int(record.get("decaenv_source_size", st.st_size)) == st.st_size and str(
        record["decaenv_source_sha256"]
    ) == sha256_file(pkl)


def preferred_flame_file(data_dir: os.PathLike, stem: str = "generic_model") -> Path:
    """The FLAME file the runtime should read: `<stem>.npz` or `<stem>.pkl`.

    * Only the npz exists (and is a complete FLAME npz) → the npz.
    * Both exist and the npz records the pickle it came from → the npz exactly when it was converted from
      the current pickle (sha256; a replaced pickle makes the npz stale whatever the mtimes say).
    * Both exist and the npz has no record (made by other tools) → the npz when it is at least as new.
    * Otherwise → the pickle (also when neither exists: the caller reports the missing pickle).
    """
    data_dir = Path(data_dir)
    pkl, npz = data_dir / f"{stem}.pkl", data_dir / f"{stem}.npz"
    if not npz.is_file():
        return pkl
    record = _npz_record(npz)
    if record is None:
        log.info("ignoring %s: not a complete FLAME npz", npz)
        return pkl
    if not pkl.is_file():
        return npz
    if "decaenv_source_sha256" in record:
        if npz_matches_source(npz, pkl):
            return npz
        log.warning("ignoring %s: it was converted from a different %s (re-run `decaenv convert flame`)", npz, pkl.name)
        return pkl
    return npz if npz.stat().st_mtime >= pkl.stat().st_mtime else pkl

"""Loader of the compiled rasterizer: never compiles, never waits on a lock, never hangs.

`load()` looks for a published, verified build matching this Python/torch/CUDA and these sources (see
`_env` for the search order and layout) and loads it with `torch.ops.load_library`. Anything else (no
build, a build for other sources, a library that fails to load) leaves the compiled backends
unavailable with a reason, and `rasterize(backend="auto")` falls back to a pure-PyTorch backend.
Only `decaenv build` (`decaenv.runtime.rasterizer.build`) compiles.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from decaenv.runtime.rasterizer import _env

log = logging.getLogger("decaenv.runtime.rasterizer")

_lock = threading.Lock()
_state: Dict[str, Optional[str]] = {"variant": None, "path": None, "error": None, "attempted": None}


@dataclass(frozen=True)
class VariantStatus:
    """One published build (cpu or cuda) for this environment.

    Attributes:
        built: a library and its record exist for this key.
        usable: built, from the current sources, and verified.
        path: the library file, when built.
        problem: why it is not usable, when built but not usable.
        record: the build record (versions, seconds, verification, ...).
    """

    variant: str
    built: bool
    usable: bool
    path: Optional[str] = None
    problem: Optional[str] = None
    record: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExtensionStatus:
    """Everything the doctor reports about the compiled rasterizer.

    Attributes:
        key: environment key (Python, torch, CUDA, machine) builds are stored under.
        torch, cuda, python: versions of this environment (cuda None for a CPU build of torch).
        build_root: where `decaenv build` writes.
        variants: "cpu" and "cuda" -> VariantStatus (the first usable one found in the search roots).
        loaded: variant loaded in this process, if any; load_error: why loading failed.
        last_error: record of the last failed build (diagnosis, log), if any.
        build_in_progress: description of the holder of the build lock, if a build is running.
    """

    key: str
    torch: str
    cuda: Optional[str]
    python: str
    build_root: str
    variants: Dict[str, VariantStatus]
    loaded: Optional[str] = None
    load_error: Optional[str] = None
    last_error: Optional[dict] = None
    build_in_progress: Optional[str] = None

    @property
    def built(self) -> bool:
        return any(v.usable for v in self.variants.values())

    def summary(self) -> str:
        """One line: what is usable, or why nothing is."""
        usable = [name for name, v in self.variants.items() if v.usable]
        if usable:
            return f"built ({', '.join(usable)}) for torch {self.torch}" + (f", CUDA {self.cuda}" if self.cuda else "")
        problems = [v.problem for v in self.variants.values() if v.problem]
        return problems[0] if problems else "not built (run `decaenv build`)"

    def to_dict(self) -> dict:
        return asdict(self)


def read_json(path: Path) -> Optional[dict]:
    """A JSON object from `path`, or None when missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def inspect_variant(root: Path, key: str, variant: str, digest: str) -> VariantStatus:
    """Status of the build of `variant` under `root/key` (no loading)."""
    folder = root / key
    record = read_json(folder / f"{variant}.json")
    library = folder / _env.library_file(variant)
    if record is None or not library.is_file():
        return VariantStatus(variant, built=False, usable=False)
    problem = None
    if record.get("source_digest") != digest:
        problem = f"the {variant} build in {folder} is from other decaenv sources (run `decaenv build` to rebuild it)"
    elif not record.get("verified"):
        problem = f"the {variant} build in {folder} failed its check against the reference rasterizer"
    return VariantStatus(variant, built=True, usable=problem is None, path=str(library), problem=problem, record=record)


def find_variant(variant: str, roots: Optional[Iterable[Path]] = None) -> VariantStatus:
    """First usable build of `variant` in the search roots, else the first built one, else 'not built'."""
    key, digest = _env.env_key().name, _env.source_digest()
    found = [inspect_variant(Path(r), key, variant, digest) for r in (roots or _env.search_roots())]
    for status in found:
        if status.usable:
            return status
    return next((s for s in found if s.built), VariantStatus(variant, built=False, usable=False))


def _ops_loaded() -> bool:
    import torch

    try:
        return hasattr(torch.ops.decaenv, "rasterize") and callable(torch.ops.decaenv.rasterize)
    except (AttributeError, RuntimeError):
        return False


def loaded_op(name: str):
    """`torch.ops.decaenv.<name>` when a build is loaded in this process and registers it, else None.

    Never loads a build (the rasterizer backend's choice does, and the input worker processes'), nor torch: a
    process that has not imported torch has no build loaded. Ops other than `rasterize` are faster kernels of
    what the torch or numpy code computes bit for bit, used where they happen to be there.
    """
    if "torch" not in sys.modules or (_state["variant"] is None and not _ops_loaded()):
        return None
    import torch

    try:
        return getattr(torch.ops.decaenv, name)
    except (AttributeError, RuntimeError):  # an older build in this process: not registered
        return None


def readonly_view(array) -> Any:
    """A CPU tensor sharing the memory of a numpy array or a bytes object, read-only ones included, for an op that
    only reads it (torch warns that such memory could be written through the tensor)."""
    import numpy as np
    import torch

    if isinstance(array, (bytes, bytearray, memoryview)):
        array = np.frombuffer(array, dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def checked_op(name: str, checks: Dict[Any, bool], key: Any, agrees: Callable[[Any], bool], limit: int = 256):
    """`loaded_op(name)` where it gives the torch path's numbers here, else None.

    For kernels that reproduce the rounding of torch's own CPU kernels (which another torch build or CPU may
    round otherwise): `agrees(op)` runs the first time `key` is seen, and its answer is kept in `checks`, the
    caller's dict of at most `limit` keys.
    """
    op = loaded_op(name)
    if op is None:
        return None
    if key not in checks:
        if len(checks) >= limit:
            checks.clear()
        checks[key] = bool(agrees(op))
    return op if checks[key] else None


def load(roots: Optional[Iterable[Path]] = None, retry: bool = False) -> Optional[str]:
    """Load the best usable build (cuda variant first when torch has CUDA), once per process.

    Args:
        roots: build roots to search instead of `_env.search_roots()` (tests).
        retry: search again after an earlier attempt found nothing (e.g. right after a build).

    Returns:
        The loaded variant ("cpu" or "cuda"), or None (see `load_error()` for why).
    """
    import torch

    with _lock:
        if _state["variant"] is not None or (_state["attempted"] and roots is None and not retry):
            return _state["variant"]
        _state["attempted"] = "yes"
        if _ops_loaded():  # registered earlier in this process (a namespace can be registered only once)
            info = str(torch.ops.decaenv._build_info())
            _state.update(variant="cuda" if "cuda=1" in info else "cpu", path="(already loaded)", error=None)
            return _state["variant"]
        order = ("cuda", "cpu") if torch.version.cuda else ("cpu",)
        problems = []
        for variant in order:
            status = find_variant(variant, roots)
            if not status.usable:
                if status.problem:
                    problems.append(status.problem)
                continue
            try:
                torch.ops.load_library(status.path)
            except (OSError, RuntimeError) as exc:
                problems.append(f"loading {status.path} failed: {' '.join(str(exc).split())}")
                continue
            if not _ops_loaded():
                problems.append(f"{status.path} does not register torch.ops.decaenv.rasterize")
                continue
            _state.update(variant=variant, path=status.path, error=None)
            log.debug("rasterizer: loaded the %s extension from %s", variant, status.path)
            return variant
        _state["error"] = problems[0] if problems else "not built (run `decaenv build`)"
        return None


def load_error() -> Optional[str]:
    """Why no compiled build is loaded (None when one is)."""
    load()
    return _state["error"]


def kernel_for(device_type: str) -> Tuple[bool, str]:
    """Whether the loaded extension has a kernel for `device_type` ("cpu"/"cuda"), and why (not)."""
    variant = load()
    if variant is None:
        return False, load_error() or "not built"
    if device_type == "cuda" and variant != "cuda":
        return False, "only the CPU extension is built (run `decaenv build --cuda`)"
    return True, f"{variant} extension loaded from {_state['path']}"


def extension_status(roots: Optional[Iterable[Path]] = None) -> ExtensionStatus:
    """Report built variants, what this process loaded, the last build error and a running build.

    Reads files only: it neither compiles nor loads a library nor waits for a lock.
    """
    from decaenv._process import describe_holder
    from decaenv.paths import build_dir

    key = _env.env_key()
    variants = {v: find_variant(v, roots) for v in _env.VARIANTS}
    folder = build_dir() / key.name
    return ExtensionStatus(
        key=key.name,
        torch=key.torch,
        cuda=key.cuda,
        python=key.python,
        build_root=str(build_dir()),
        variants=variants,
        loaded=_state["variant"],
        load_error=_state["error"],
        last_error=read_json(folder / "last-error.json"),
        build_in_progress=describe_holder(folder / "build.lock"),
    )

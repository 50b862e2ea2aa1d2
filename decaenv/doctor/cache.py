"""Result cache keyed by an environment fingerprint, so a second `decaenv doctor` costs file stats, not imports.

Each check lists the fingerprint components its result depends on (`Check.cache`); its cache key is the hash
of those components (plus the interpreter and decaenv's own code, always). Components are cheap to compute
(stat calls, a few file reads; no subprocess, no import):

    python     interpreter path, version, platform
    site       mtimes of every folder on sys.path (installing/removing a package touches them)
    torchpkg   torch's version.py (version, CUDA build)
    driver     the NVIDIA kernel driver version
    toolchain  path, size and mtime of nvcc, gcc, g++, c++, cc, clang, ninja, cl and each CUDA root's nvcc
    env        environment variables that change builds and probes (CUDA_HOME, PATH, CC, TORCH_*, ...)
    data       the data dir's files (name, size, mtime, inode)
    hub        the torch hub checkpoint folder (face_alignment weights)
    build      decaenv's build folder (built rasterizer extensions)
    csrc       decaenv's rasterizer sources
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from decaenv.doctor.model import Check, CheckResult, Status

CACHE_FORMAT = 1
ENV_VARS = ("PATH", "CUDA_HOME", "CUDA_PATH", "CC", "CXX", "NVCC_CCBIN", "CUDAHOSTCXX", "LD_LIBRARY_PATH",
            "TORCH_CUDA_ARCH_LIST", "TORCH_EXTENSIONS_DIR", "TORCH_HOME", "XDG_CACHE_HOME", "CUDA_VISIBLE_DEVICES",
            "TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "PYTHONPATH", "MAX_JOBS",
            "DECAENV_HOME", "DECAENV_DATA_DIR", "HOME")
TOOLS = ("nvcc", "gcc", "g++", "c++", "cc", "clang", "ninja", "cl")


def _stat(path: Optional[str]) -> List[Any]:
    if not path:
        return [None]
    try:
        st = os.stat(path)
    except OSError:
        return [path, None]
    return [path, st.st_size, st.st_mtime_ns]


def _listing(folder: Path, depth: int = 1) -> List[Any]:
    out: List[Any] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return [str(folder), None]
    for entry in entries:
        try:
            st = entry.stat()
        except OSError:
            continue
        out.append([entry.name, st.st_size, st.st_mtime_ns, st.st_ino])
        if depth > 1 and entry.is_dir():
            out.append(_listing(Path(entry.path), depth - 1))
    return out


def _decaenv_code() -> List[Any]:
    root = Path(__file__).resolve().parents[1]
    stamps = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                stamps.append(os.stat(os.path.join(folder, name)).st_mtime_ns)
    from decaenv import __version__

    return [__version__, str(root), len(stamps), max(stamps) if stamps else 0]


class Fingerprint:
    """Computes (and memoizes) fingerprint components for one doctor run.

    Args:
        environ: environment variables. data_dir: the checked data dir. which: `shutil.which`-like function.
    """

    def __init__(self, environ: Mapping[str, str], data_dir: Path,
                 which: Optional[Callable[[str], Optional[str]]] = None):
        self.environ = dict(environ)
        self.data_dir = Path(data_dir)
        self.which = which or (lambda name: shutil.which(name, path=self.environ.get("PATH", os.defpath)))
        self._values: Dict[str, str] = {}

    def component(self, name: str) -> str:
        if name not in self._values:
            raw = getattr(self, f"_{name}")()
            self._values[name] = hashlib.sha256(json.dumps(raw, default=str).encode()).hexdigest()[:16]
        return self._values[name]

    def key(self, components: Iterable[str]) -> str:
        parts = ["python", "decaenv"] + sorted(set(components))
        return hashlib.sha256("|".join(f"{p}={self.component(p)}" for p in parts).encode()).hexdigest()[:24]

    # components ---------------------------------------------------------------------------------------------
    def _python(self):
        return [os.path.realpath(sys.executable), sys.version, platform.platform(), sys.prefix]

    def _decaenv(self):
        return _decaenv_code()

    def _site(self):
        # sys.path[0] is the script's folder or the current directory (python -m): not where packages live.
        return [[p, _stat(p)[-1]] for p in sys.path[1:] if p and os.path.isdir(p)]

    def _torchpkg(self):
        import importlib.util

        spec = importlib.util.find_spec("torch")
        folder = spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None
        return _stat(os.path.join(folder, "version.py")) if folder else [None]

    def _driver(self):
        for path in ("/proc/driver/nvidia/version", "/sys/module/nvidia/version"):
            try:
                return Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
        return None

    def _toolchain(self):
        out = [[tool] + _stat(self.which(tool)) for tool in TOOLS]
        for var in ("CUDA_HOME", "CUDA_PATH"):
            root = self.environ.get(var, "").strip().strip(os.pathsep)
            if root:
                out.append(_stat(os.path.join(root, "bin", "nvcc")))
        out.append(_stat("/usr/local/cuda/bin/nvcc"))
        return out

    def _env(self):
        return [[name, self.environ.get(name)] for name in ENV_VARS]

    def _data(self):
        return [str(self.data_dir.resolve())] + _listing(self.data_dir, depth=2)

    def _hub(self):
        home = self.environ.get("TORCH_HOME") or os.path.join(
            self.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch")
        return _listing(Path(home) / "hub" / "checkpoints")

    def _build(self):
        from decaenv.paths import build_dir

        return _listing(build_dir(), depth=2)

    def _csrc(self):
        root = Path(__file__).resolve().parents[1] / "runtime" / "csrc"
        return _listing(root, depth=3)


class ResultCache:
    """Check results on disk (`<cache dir>/doctor/results-v1.json`), one entry per check id."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._entries: Dict[str, Dict[str, Any]] = {}
        self._dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") == CACHE_FORMAT:
                # malformed entries (hand edits, another tool) are treated as absent
                self._entries = {k: v for k, v in dict(data.get("checks", {})).items() if isinstance(v, dict)}
        except (OSError, ValueError, AttributeError, TypeError):
            self._entries = {}

    @classmethod
    def default(cls) -> "ResultCache":
        from decaenv.paths import cache_dir

        return cls(cache_dir() / "doctor" / f"results-v{CACHE_FORMAT}.json")

    def get(self, item: Check, key: str) -> Optional[CheckResult]:
        entry = self._entries.get(item.id)
        if not entry or entry.get("key") != key:
            return None
        try:
            return CheckResult.from_json(entry["result"]).with_(cached=True)
        except (KeyError, ValueError, TypeError):
            return None

    def put(self, item: Check, key: str, result: CheckResult) -> None:
        if result.status in (Status.TIMEOUT, Status.CRASH):
            return  # transient or a bug: always re-run
        self._entries[item.id] = {"key": key, "at": time.time(), "result": result.with_(cached=False).to_json()}
        self._dirty = True

    def save(self) -> None:
        """Write atomically; a cache that cannot be written is silently skipped (it is only a cache)."""
        if not self._dirty:
            return
        import tempfile

        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".results-", dir=str(self.path.parent))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": CACHE_FORMAT, "checks": self._entries}, fh)
            os.replace(tmp, self.path)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

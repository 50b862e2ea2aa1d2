"""Ahead-of-time build of the rasterizer extension (`decaenv build` and the doctor call this).

For each variant ("cpu": CPU kernels; "cuda": CPU and CUDA kernels):
    1. pre-flight checks with a clear cause (no ninja, no compiler, CPU-only torch, no CUDA toolkit);
    2. take decaenv's build lock for the environment's folder (PID/host check, stale locks taken over,
       bounded wait) and delete torch's own `lock` in the work folder, which only a dead build can have
       left there while we hold ours (torch would wait on it forever, FM06);
    3. copy the sources into the work folder and compile in a child process (`_worker`) that also
       checks the library against the reference rasterizer;
    4. publish the library and its record atomically, or record the diagnosed failure.
Nothing here runs at import time or from `rasterize()`: loading never compiles.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from decaenv._process import LockBusy, ProcessLock, kill_tree, new_process_group
from decaenv._typing import StrPath
from decaenv.errors import BuildError
from decaenv.runtime.rasterizer import _env
from decaenv.runtime.rasterizer.diagnose import Diagnosis, diagnose, diagnose_build_output, first_error_line

DEFAULT_LOCK_TIMEOUT_S = 900.0
DEFAULT_BUILD_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class VariantResult:
    """Outcome of building one variant.

    Attributes:
        status: "built", "up-to-date", "failed" or "skipped".
        seconds: wall time of the build (0 when nothing was built).
        library: path of the published library, when there is one.
        diagnosis: cause and fix of a failure (or of a skip).
        verification: per-device checks against the reference rasterizer.
        log: path of the full build log.
    """

    variant: str
    status: str
    seconds: float = 0.0
    library: Optional[str] = None
    diagnosis: Optional[Diagnosis] = None
    verification: dict = field(default_factory=dict)
    log: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status in ("built", "up-to-date", "skipped")


@dataclass(frozen=True)
class BuildResult:
    """Outcome of `build()`: ok when every requested variant is built or up to date."""

    key: str
    folder: str
    variants: List[VariantResult]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.variants) and any(v.status != "skipped" for v in self.variants)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(
            f"cannot create the build folder {folder}: {exc.strerror or exc}",
            hint="pass a writable folder to --into, or set DECAENV_HOME",
            path=folder,
        ) from exc


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _sync_sources(work: Path) -> None:
    """Copy csrc into work/src, rewriting only changed files (ninja rebuilds what changed)."""
    src_root = _env.csrc_dir()
    for path in _env.source_files():
        dest = work / "src" / path.relative_to(src_root)
        data = path.read_bytes()
        if not dest.is_file() or dest.read_bytes() != data:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)


def preflight(variant: str) -> Optional[Diagnosis]:
    """Why `variant` cannot be built here, found without compiling (None when nothing is missing)."""
    import torch
    from torch.utils import cpp_extension

    if not cpp_extension.is_ninja_available():
        return diagnose("no-ninja", "ninja --version failed")
    compiler = os.environ.get("CXX") or ("cl" if os.name == "nt" else "c++")
    if not shutil.which(compiler):
        return diagnose("no-compiler", f"{compiler} not found on PATH")
    if variant == "cuda":
        if not torch.version.cuda:
            return diagnose("cpu-torch", f"torch {torch.__version__} has no CUDA")
        home = cpp_extension.CUDA_HOME
        if not home or not Path(home).is_dir():
            return diagnose("cuda-home-unset", f"CUDA_HOME={home!r}")
        nvcc = Path(home) / "bin" / ("nvcc.exe" if os.name == "nt" else "nvcc")
        if not nvcc.is_file():
            return diagnose("cuda-home-unset", f"{nvcc} does not exist")
    return None


def plan(cpu: Optional[bool], cuda: Optional[bool]) -> List[str]:
    """Variants to build: the flags given, else cpu plus cuda when torch has CUDA."""
    import torch

    if cpu or cuda:
        return [v for v, wanted in (("cpu", cpu), ("cuda", cuda)) if wanted]
    return ["cpu", "cuda"] if torch.version.cuda else ["cpu"]


def _run_worker(job: dict, log_path: Path, timeout: float, echo: Optional[Callable[[str], None]]):
    """Run the build child; returns (result dict or None, full output, timed out)."""
    cmd = [sys.executable, "-m", "decaenv.runtime.rasterizer._worker", json.dumps(job)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", **new_process_group()
    )
    lines: List[str] = []
    stream = proc.stdout
    assert stream is not None  # stdout=PIPE

    def pump() -> None:
        for line in stream:
            lines.append(line)
            if echo:
                echo(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_tree(proc)
    except BaseException:  # Ctrl-C: stop the compilers too, keep the log, re-raise
        kill_tree(proc)
        reader.join(5)
        log_path.write_text("".join(lines), encoding="utf-8", errors="replace")
        raise
    reader.join(30)
    output = "".join(lines)
    log_path.write_text(output, encoding="utf-8", errors="replace")
    marker = [ln for ln in lines if ln.startswith("DECAENV_BUILD_RESULT ")]
    result = json.loads(marker[-1][len("DECAENV_BUILD_RESULT ") :]) if marker and not timed_out else None
    return result, output, timed_out


def _publish(folder: Path, variant: str, built: Path, record: dict) -> Path:
    target = folder / _env.library_file(variant)
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    shutil.copy2(built, tmp)
    os.replace(tmp, target)  # a process that mapped the old file keeps it; new loads see the new one
    _write_json_atomic(folder / f"{variant}.json", record)
    (folder / "last-error.json").unlink(missing_ok=True)
    return target


def _build_variant(
    variant: str, folder: Path, key: _env.EnvKey, timeout: float, echo: Optional[Callable[[str], None]]
) -> VariantResult:
    import torch

    work = folder / f"work-{variant}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "lock").unlink(missing_ok=True)  # torch's FileBaton: stale if present while we hold our lock
    _sync_sources(work)
    digest = _env.source_digest()
    job = {
        "variant": variant,
        "work": str(work),
        "name": _env.library_name(variant),
        "digest": digest,
        "library_file": _env.library_file(variant),
        "sources": _env.translation_units(variant),
    }
    log_path = folder / f"build-{variant}.log"
    start = time.monotonic()
    result, output, timed_out = _run_worker(job, log_path, timeout, echo)
    seconds = round(time.monotonic() - start, 1)
    if result and result.get("ok"):
        record = {
            "variant": variant,
            "key": key.name,
            "python": key.python,
            "torch": key.torch,
            "cuda": key.cuda,
            "source_digest": digest,
            "verified": True,
            "seconds": seconds,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "verification": result["verification"],
            "compiler": result["verification"].get("build_info", ""),
        }
        library = _publish(folder, variant, Path(result["library"]), record)
        return VariantResult(variant, "built", seconds, str(library), None, result["verification"], str(log_path))
    if timed_out:
        diag = Diagnosis(
            "timeout",
            f"the build did not finish within {timeout:g} s and was stopped",
            "rerun `decaenv build -v` to watch it, with a longer --timeout if the machine is slow",
            first_error_line(output),
        )
    elif result and result.get("stage") == "verify" and "verification" in result:
        diag = Diagnosis(
            "wrong-results",
            "the compiled rasterizer disagrees with the reference rasterizer",
            "report this as a decaenv bug, with the log",
            "; ".join(c["detail"] for c in result["verification"]["checks"]),
        )
    else:
        diag = diagnose_build_output(output, torch_has_cuda=bool(torch.version.cuda))
    _write_json_atomic(
        folder / "last-error.json",
        {
            "variant": variant,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "log": str(log_path),
            "diagnosis": asdict(diag),
        },
    )
    return VariantResult(variant, "failed", seconds, None, diag, (result or {}).get("verification", {}), str(log_path))


@contextlib.contextmanager
def _build_lock(folder: Path, variant: str, timeout: float) -> Iterator[ProcessLock]:
    """Hold the build folder's lock (BuildError naming the holder after `timeout` seconds)."""
    lock = ProcessLock(folder / "build.lock", timeout, purpose=f"building the {variant} rasterizer")
    try:
        lock.acquire()
    except LockBusy as exc:
        raise BuildError(
            f"another decaenv build is running: {exc.holder}; gave up after {timeout:g} s",
            hint=f"wait for it to finish and retry; if that process is gone, delete {exc.path}",
            path=exc.path,
        ) from None
    try:
        yield lock
    finally:
        lock.release()


def _echo_stderr(line: str) -> None:
    """The default `echo` of a verbose build."""
    print(line, file=sys.stderr, flush=True)


def build(
    cpu: Optional[bool] = None,
    cuda: Optional[bool] = None,
    verbose: bool = False,
    *,
    force: bool = False,
    root: Optional[StrPath] = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
    timeout: float = DEFAULT_BUILD_TIMEOUT_S,
    echo: Optional[Callable[[str], None]] = None,
) -> BuildResult:
    """Build, check and publish the extension for this Python/torch/CUDA.

    Args:
        cpu, cuda: variants to build; neither given: cpu, plus cuda when torch has CUDA (a cuda variant
            that cannot be built is then skipped, not failed).
        verbose: stream the compiler output to `echo` (default: stderr).
        force: rebuild even when an up-to-date, verified build exists.
        root: build root (default `decaenv.paths.build_dir()`).
        lock_timeout: seconds to wait for another build of the same environment.
        timeout: seconds one variant's compilation may take.

    Returns:
        BuildResult (check `.ok`; failures carry a Diagnosis).

    Raises:
        BuildError: another build holds the lock for longer than `lock_timeout`.
    """
    from decaenv.paths import build_dir
    from decaenv.runtime.rasterizer.extension import inspect_variant

    try:
        import torch  # noqa: F401 - imported only to check that it is installed
    except Exception as exc:
        raise BuildError(
            f"cannot build the rasterizer: torch is not importable ({type(exc).__name__}: {exc})",
            hint="install torch first (see the README), then run `decaenv build`",
        ) from exc
    explicit = bool(cpu or cuda)
    key = _env.env_key()
    base = Path(root) if root is not None else build_dir()
    folder = base / key.name
    if folder.exists() and not folder.is_dir() or base.exists() and not base.is_dir():
        raise BuildError(f"build folder {folder} is not a folder", hint="pass a folder to --into", path=base)
    if verbose and echo is None:
        echo = _echo_stderr
    results = []
    for variant in plan(cpu, cuda):
        problem = preflight(variant)
        if problem is not None:
            status = "failed" if explicit or variant == "cpu" else "skipped"
            results.append(VariantResult(variant, status, diagnosis=problem))
            if status == "failed":
                _make_folder(folder)
                _write_json_atomic(
                    folder / "last-error.json",
                    {
                        "variant": variant,
                        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "log": None,
                        "diagnosis": asdict(problem),
                    },
                )
            continue
        _make_folder(folder)
        with _build_lock(folder, variant, lock_timeout):
            current = inspect_variant(base, key.name, variant, _env.source_digest())
            if current.usable and not force:
                results.append(
                    VariantResult(
                        variant,
                        "up-to-date",
                        float(current.record.get("seconds", 0)),
                        current.path,
                        verification=current.record.get("verification", {}),
                    )
                )
                continue
            results.append(_build_variant(variant, folder, key, timeout, echo if verbose else None))
    return BuildResult(key.name, str(folder), results)

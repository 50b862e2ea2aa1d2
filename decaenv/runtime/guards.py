"""Two guards of `decaenv reconstruct`: one run per output folder, and no `--render-orig` that cannot fit in memory.

* `OutputLock`: an advisory lock (`filelock`, flock on POSIX: the kernel drops it when its holder dies, even
  on `kill -9`) named after the output folder's real path, kept in decaenv's cache folder (`locks/`, so the
  output folder holds only outputs), with the holder's pid, host and start time beside it: a second run into
  the same folder stops at once and says which run owns it instead of overwriting its items.
* `check_render_orig_memory`: rendering at the original size keeps several full-size float panels and the
  rasterizer's per-pixel buffers; a 110-megapixel photo needed more than 14 GB. The peak is estimated from
  the pixel count before rendering and the item is refused (one line: size, estimate, what is available,
  the fix) when it would not fit.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

from decaenv.errors import InputError, UsageError

#: Peak bytes per original-image pixel of a `--render-orig` decode: float32 RGB panels (inputs, shape,
#: detail, landmarks, background: 5 × 12 bytes), rasterizer buffers (depth, face ids, barycentrics, normals,
#: masks ≈ 40 bytes) and temporaries. 110 MP measured 14 GB ≈ 127 bytes/pixel.
BYTES_PER_PIXEL = 128
#: Share of the available memory a render may plan to use.
HEADROOM = 0.8


class OutputLock:
    """Hold the lock of `out_dir` for the duration of a run (a context manager)."""

    def __init__(self, out_dir: os.PathLike):
        import hashlib

        from decaenv.paths import cache_dir

        self.out_dir = Path(out_dir)
        key = hashlib.sha256(os.path.realpath(self.out_dir).encode("utf-8", "surrogateescape")).hexdigest()[:24]
        folder = cache_dir() / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"reconstruct-{key}.lock"
        self.owner_path = folder / f"reconstruct-{key}.owner"
        self._lock = None

    def __enter__(self) -> "OutputLock":
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise UsageError(f"output folder {self.out_dir} is in use by another `decaenv reconstruct` "
                             f"({self._holder()}); two runs would overwrite each other's items",
                             hint="wait for it to finish, or pass another folder with -o") from None
        self._lock = lock
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        try:
            self.owner_path.write_text(json.dumps(owner), "utf-8")
        except OSError:
            pass
        return self

    def _holder(self) -> str:
        try:
            owner = json.loads(self.owner_path.read_text("utf-8"))
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner["started"])))
            return f"process {int(owner['pid'])} on {owner['host']}, started {since}"
        except (OSError, ValueError, KeyError, TypeError):
            return "owner unknown"

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            try:
                self.owner_path.unlink()
            except OSError:
                pass
            self._lock.release()
            self._lock = None


def available_memory(device: str = "cpu") -> Optional[int]:
    """Bytes that can still be allocated on `device` ("cpu" or "cuda[:n]"), or None when unknown."""
    if device.startswith("cuda"):
        try:
            import torch

            free, _total = torch.cuda.mem_get_info(torch.device(device))
            return int(free)
        except Exception:  # noqa: BLE001 - unknown is a valid answer
            return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_render_orig_memory(height: int, width: int, device: str = "cpu", name: str = "the image",
                             available: Optional[int] = None) -> int:
    """Refuse a `--render-orig` render of a `height`×`width` image that would not fit. Returns the estimate.

    Raises:
        InputError: the estimated peak exceeds `HEADROOM` of the available memory.
    """
    need = int(height) * int(width) * BYTES_PER_PIXEL
    free = available if available is not None else available_memory(device)
    if free is not None and need > HEADROOM * free:
        raise InputError(f"{name}: rendering at the original size ({width}×{height}, {height * width / 1e6:,.0f} MP) "
                         f"needs about {need / 1e9:,.1f} GB of {device} memory, {free / 1e9:,.1f} GB available",
                         hint="run without --render-orig (the crop-size outputs are unaffected), or downscale "
                              "the image first")
    return need

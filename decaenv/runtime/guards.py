"""Two guards of `decaenv reconstruct`: one run per output folder, and no `--render-orig` that cannot fit in memory.

* `OutputLock`: decaenv's one inter-process lock (`decaenv._process.ProcessLock`: taken over once its holder
  died, even by `kill -9`) named after the output folder's real path, kept in decaenv's cache folder (`locks/`,
  so the output folder holds only outputs): a second run into the same folder stops at once and says which
  run owns it instead of overwriting its items.
* `check_render_orig_memory`: rendering at the original size keeps several full-size float panels and the
  rasterizer's per-pixel buffers; a 110-megapixel photo needed more than 14 GB. The peak is estimated from
  the pixel count before rendering and the item is refused (one line: size, estimate, what is available,
  the fix) when it would not fit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from decaenv._process import LockBusy, ProcessLock
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
        self.path = cache_dir() / "locks" / f"reconstruct-{key}.lock"
        self._lock = ProcessLock(self.path, timeout=0, purpose=f"decaenv reconstruct into {self.out_dir}")

    def __enter__(self) -> "OutputLock":
        try:
            self._lock.acquire()
        except LockBusy as exc:
            raise UsageError(f"output folder {self.out_dir} is in use by another `decaenv reconstruct` "
                             f"({exc.holder}); two runs would overwrite each other's items",
                             hint="wait for it to finish, or pass another folder with -o") from None
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()


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

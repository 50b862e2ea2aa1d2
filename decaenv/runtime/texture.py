"""The optional albedo models (`FLAMETex`, deca-spec §4.4): BFM-in-FLAME (`FLAME_albedo_from_BFM.npz`,
tex_type "BFM") or the FLAME texture space (`FLAME_texture.npz`, tex_type "FLAME").

Only the first `n_tex` principal components are kept; they are streamed out of the npz so the 1.25 GB
BFM basis is never fully in memory.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from decaenv.errors import DataError

#: (mean key, basis key, scale) per texture type.
TEX_KEYS = {"BFM": ("MU", "PC", 1.0), "FLAME": ("mean", "tex_dir", 1.0 / 255.0)}
_CHUNK_BYTES = 32 << 20


def _read_member(zf: zipfile.ZipFile, key: str, n_cols: int, path: Path) -> np.ndarray:
    """Read `key` from an npz as (rows, min(cols, n_cols)) float32, streaming row blocks."""
    from numpy.lib import format as npformat

    name = key + ".npy"
    if name not in zf.namelist():
        raise DataError(
            f"texture space {path} lacks '{key}' (has {', '.join(n[:-4] for n in zf.namelist())})",
            hint="use the official FLAME_albedo_from_BFM.npz / FLAME_texture.npz",
            path=path,
        )
    with zf.open(name) as fh:
        version = npformat.read_magic(fh)
        reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
        shape, fortran, dtype = reader(fh)
        if dtype.hasobject:
            raise DataError(f"texture space {path}: '{key}' is an object array", path=path)
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else int(shape[0]) if shape else 1
        cols = int(shape[-1]) if len(shape) > 1 else 1
        if fortran and cols > 1:
            data = np.frombuffer(fh.read(), dtype=dtype).reshape(shape, order="F").reshape(rows, cols)
            return np.ascontiguousarray(data[:, :n_cols], dtype=np.float32)
        keep = min(cols, n_cols)
        out = np.empty((rows, keep), np.float32)
        block = max(1, _CHUNK_BYTES // max(1, cols * dtype.itemsize))
        for start in range(0, rows, block):
            count = min(block, rows - start)
            raw = fh.read(count * cols * dtype.itemsize)
            if len(raw) != count * cols * dtype.itemsize:
                raise DataError(f"texture space {path}: '{key}' is truncated", hint="download it again", path=path)
            out[start : start + count] = np.frombuffer(raw, dtype=dtype).reshape(count, cols)[:, :keep]
        return out


def load_texture_space(path: os.PathLike, tex_type: str, n_tex: int) -> Tuple[np.ndarray, np.ndarray]:
    """Mean (1, N) and basis (N, n_tex) float32, N = 3·S² (S = 512 for the official files), values in [0, 1].

    Raises:
        DataError: missing, unreadable, wrong keys, or fewer than `n_tex` components.
    """
    path = Path(path)
    if tex_type not in TEX_KEYS:
        raise DataError(f"unknown texture type {tex_type!r}", hint="use BFM or FLAME")
    if not path.is_file():
        source = (
            "BFM_to_FLAME (needs a BFM licence)" if tex_type == "BFM" else "the FLAME website (FLAME texture space)"
        )
        raise DataError(
            f"texture space {path} does not exist (tex_type {tex_type})",
            hint=f"get it from {source}, or run without --use-tex",
            path=path,
        )
    mean_key, basis_key, scale = TEX_KEYS[tex_type]
    try:
        with zipfile.ZipFile(path) as zf:
            mean = _read_member(zf, mean_key, 1 << 30, path).reshape(1, -1)
            basis = _read_member(zf, basis_key, n_tex, path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"texture space {path} is not a readable npz ({exc})", hint="download it again", path=path
        ) from exc
    if basis.shape[0] != mean.shape[1] or basis.shape[1] < n_tex:
        raise DataError(
            f"texture space {path}: basis {basis.shape} does not fit mean {mean.shape} and {n_tex} components",
            hint="use the official file",
            path=path,
        )
    side = int(round((mean.shape[1] / 3) ** 0.5))
    if 3 * side * side != mean.shape[1]:
        raise DataError(f"texture space {path}: {mean.shape[1]} values are not a square RGB texture", path=path)
    return mean * scale, basis * scale


class FLAMETex(nn.Module):
    """Albedo = mean + basis · texcode, as an (B, 3, uv, uv) image in RGB, values about [0, 1].

    Args:
        path: the npz. tex_type: "BFM" or "FLAME". n_tex: components used (50). uv_size: output size (256).
    """

    # Buffers registered in __init__ (declared here for type checkers).
    texture_mean: torch.Tensor
    texture_basis: torch.Tensor

    def __init__(self, path: os.PathLike, tex_type: str = "BFM", n_tex: int = 50, uv_size: int = 256):
        super().__init__()
        mean, basis = load_texture_space(path, tex_type, n_tex)
        self.size = int(round((mean.shape[1] / 3) ** 0.5))
        self.uv_size = uv_size
        self.register_buffer("texture_mean", torch.from_numpy(mean), persistent=False)
        self.register_buffer(
            "texture_basis", torch.from_numpy(np.ascontiguousarray(basis[:, :n_tex])), persistent=False
        )

    def forward(self, texcode: torch.Tensor) -> torch.Tensor:
        """texcode: (B, n_tex) → (B, 3, uv, uv): reshape to S×S×3, nearest-resize, BGR → RGB."""
        texture = self.texture_mean + texcode @ self.texture_basis.T
        texture = texture.reshape(texcode.shape[0], self.size, self.size, 3).permute(0, 3, 1, 2)
        texture = F.interpolate(texture, [self.uv_size, self.uv_size])
        return texture[:, [2, 1, 0]]

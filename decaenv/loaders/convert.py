"""The `decaenv convert flame` operation: checks around `flame.convert_to_npz` (fetch's post-processing and
`doctor --fix` call `convert_to_npz` directly)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from decaenv.errors import UsageError
from decaenv.loaders import flame

KINDS = ("generic", "female", "male", "flame2023", "unknown")


@dataclass(frozen=True)
class ConversionResult:
    """What `convert_flame` wrote.

    Attributes:
        source, output: the pickle read and the npz written.
        kind: FLAME variant recorded in the npz.
        vertices, faces, components: model sizes (components = shape + expression directions).
        source_sha256: digest of the source recorded in the npz.
        incompatible: reasons the model cannot be used with DECA's checkpoint (empty when it can).
    """

    source: Path
    output: Path
    kind: str
    vertices: int
    faces: int
    components: int
    source_sha256: str
    incompatible: Tuple[str, ...]

    def summary(self) -> str:
        return (
            f"wrote {self.output} from {self.source}: FLAME {self.kind}, {self.vertices} vertices, "
            f"{self.faces} faces, {self.components} shape+expression components"
        )

    def to_json(self) -> Dict[str, object]:
        return {
            "source": str(self.source),
            "output": str(self.output),
            "kind": self.kind,
            "vertices": self.vertices,
            "faces": self.faces,
            "components": self.components,
            "source_sha256": self.source_sha256,
            "deca_compatible": not self.incompatible,
            "incompatible": list(self.incompatible),
        }


def _is_decaenv_npz(path: Path) -> bool:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return "decaenv_format" in data.files
    except Exception:  # noqa: BLE001 - unreadable means "not ours"
        return False


def convert_flame(
    src: os.PathLike, out: Optional[os.PathLike] = None, *, kind: Optional[str] = None, force: bool = False
) -> ConversionResult:
    """Convert a FLAME pickle to decaenv's npz.

    Args:
        src: the FLAME pickle.
        out: the npz (default: `src` with the suffix `.npz`).
        kind: variant override (one of KINDS).
        force: overwrite `out` even when it is not an npz decaenv wrote.
    Raises:
        UsageError: bad kind, `out` is the source, or `out` exists and is not decaenv's (without `force`).
        DataError / UnsafeContentError: the source cannot be read safely.
    """
    src = Path(src)
    out = Path(out) if out is not None else src.with_suffix(".npz")
    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise UsageError(f"the output {out} is the model itself", hint="give another file with -o")
    if out.is_dir():
        raise UsageError(f"the output {out} is a folder", hint="give a file name ending in .npz")
    if out.exists() and not force and not _is_decaenv_npz(out):
        raise UsageError(f"{out} exists and was not written by decaenv", hint="pass --force to overwrite it")
    flame.convert_to_npz(src, out, kind=kind)
    model = flame.load_flame(out)
    problems: List[str] = flame.deca_compatibility(model)
    import numpy as np

    with np.load(out, allow_pickle=False) as data:
        digest = str(data["decaenv_source_sha256"])
    return ConversionResult(
        source=src,
        output=out,
        kind=model.kind,
        vertices=int(model.v_template.shape[0]),
        faces=int(model.f.shape[0]),
        components=model.n_components,
        source_sha256=digest,
        incompatible=tuple(problems),
    )

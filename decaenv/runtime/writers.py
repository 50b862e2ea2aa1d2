"""Writing DECA's outputs with DECA's file names and formats (deca-spec §8.3), atomically.

Every file of an item is written under a temporary name in its final folder and renamed into place only
when all of the item's files are complete (`OutputSet.commit`); on failure the temporaries are removed and
nothing of the item is left behind.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Tuple

import numpy as np

from decaenv.errors import DecaenvError

#: DECA's `.mat` keys ([N], non-render_orig decode), in its order; `albedo` only with a texture model.
MAT_KEYS = (
    "verts",
    "trans_verts",
    "landmarks2d",
    "landmarks3d",
    "landmarks3d_world",
    "grid",
    "rendered_images",
    "alpha_images",
    "normal_images",
    "albedo",
    "uv_texture",
    "normals",
    "uv_detail_normals",
    "displacement_map",
    "uv_texture_gt",
)
#: Panels written by DECA's `--saveImages`, in its order.
IMAGE_KEYS = ("inputs", "rendered_images", "albedo_images", "shape_images", "shape_detail_images", "landmarks2d")
JPEG_QUALITY = 95


class OutputSet:
    """The files of one item, made visible together.

    Args:
        root: the output folder. name: the item's name (DECA's `imagename`).
    """

    def __init__(self, root: Path, name: str):
        self.root, self.name = Path(root), name
        self.folder = self.root / name
        self._pending: List[Tuple[Path, Path]] = []
        self._token = uuid.uuid4().hex[:8]
        self._made_folder = False

    def path(self, relative: str, in_folder: bool = True) -> Path:
        """Final path of an output (inside `name/` or at the top level)."""
        return (self.folder if in_folder else self.root) / relative

    def write(self, final: Path, writer: Callable[[Path], None]) -> None:
        """Write `final` through `writer(tmp_path)`; it becomes visible at `commit`."""
        if final.parent == self.folder and not self.folder.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            self._made_folder = True
        tmp = final.with_name(f".{final.stem}.{self._token}.partial{final.suffix}")  # keeps the real extension
        self._pending.append((tmp, final))
        writer(tmp)

    def commit(self) -> List[Path]:
        """Rename every temporary into place; returns the final paths."""
        done = []
        for tmp, final in self._pending:
            os.replace(tmp, final)
            done.append(final)
        self._pending = []
        return done

    def discard(self) -> None:
        """Remove the temporaries (and the item folder if this set created it and it is empty)."""
        for tmp, _ in self._pending:
            try:
                tmp.unlink()
            except OSError:
                pass
        self._pending = []
        if self._made_folder:
            try:
                self.folder.rmdir()
            except OSError:
                pass


# -- encoders of single files ---------------------------------------------------------------------------
def image_writer(rgb: np.ndarray) -> Callable[[Path], None]:
    """PNG or JPEG (quality 95) by the final name's extension; `rgb` (H, W, 3) uint8."""

    def write(tmp: Path) -> None:
        from PIL import Image

        fmt = "JPEG" if tmp.suffix.lower() in (".jpg", ".jpeg") else "PNG"
        options = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format=fmt, **options)

    return write


def text_writer(text: str) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8", newline="\n")

    return write


def _floats(values: np.ndarray) -> List[float]:
    """The values as Python floats: `%r` of them is what DECA's `'{}'.format(numpy scalar)` writes (a float32
    or float64 numpy scalar formats as the Python float of its value)."""
    return np.asarray(values).astype(np.float64).ravel().tolist()


def _interleave(columns: List[list], per_row: int) -> tuple:
    """Flat tuple row by row from per-column lists (C-speed slice assignment)."""
    flat: list = [None] * (len(columns[0]) * per_row)
    for k, column in enumerate(columns):
        flat[k::per_row] = column
    return tuple(flat)


def coarse_obj_text(
    name: str, vertices: np.ndarray, faces: np.ndarray, uvcoords: np.ndarray, uvfaces: np.ndarray
) -> str:
    """DECA's textured OBJ: `mtllib <name>.mtl`, blank line, `v`, `vt`, `usemtl FaceTexture`, `f v/vt` (1-based)."""
    v = _floats(np.asarray(vertices, dtype=np.float32))
    vt = _floats(np.asarray(uvcoords, dtype=np.float32))
    f1, t1 = np.asarray(faces, dtype=np.int64) + 1, np.asarray(uvfaces, dtype=np.int64) + 1
    corners = [
        f1[:, 0].tolist(),
        t1[:, 0].tolist(),
        f1[:, 1].tolist(),
        t1[:, 1].tolist(),
        f1[:, 2].tolist(),
        t1[:, 2].tolist(),
    ]
    return (
        f"mtllib {name}.mtl\n\n"
        + ("v %r %r %r\n" * (len(v) // 3)) % tuple(v)
        + ("vt %r %r\n" * (len(vt) // 2)) % tuple(vt)
        + "usemtl FaceTexture\n"
        + ("f %d/%d %d/%d %d/%d\n" * len(f1)) % _interleave(corners, 6)
    )


def mtl_text(name: str) -> str:
    """DECA's material: `newmtl FaceTexture`, `map_Kd <name>.png`, `disp <name>_normals.png` (no final newline).

    DECA writes the normal map's path as passed to `save_obj` (often relative to the working directory); the
    bare file name here keeps the folder relocatable.
    """
    return f"newmtl FaceTexture\nmap_Kd {name}.png\ndisp {name}_normals.png"


def detail_obj_text(vertices: np.ndarray, colours: np.ndarray, faces: np.ndarray) -> str:
    """DECA's dense mesh: `v x y z r g b` (float64 coordinates as DECA's `'{}'.format` prints them, uint8
    colours) and `f a b c` (1-based)."""
    coords = np.asarray(vertices, dtype=np.float64)
    rgb = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    columns = [coords[:, k].tolist() for k in range(3)] + [rgb[:, k].tolist() for k in range(3)]
    f1 = np.asarray(faces, dtype=np.int64) + 1
    return ("v %r %r %r %d %d %d\n" * len(coords)) % _interleave(columns, 6) + ("f %d %d %d\n" * len(f1)) % tuple(
        f1.ravel().tolist()
    )


def kpt_text(values: np.ndarray) -> str:
    """`np.savetxt` default format (`%.18e`, space-separated)."""
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(values))
    return buf.getvalue()


def mat_writer(arrays: Mapping[str, np.ndarray]) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        from scipy.io import savemat

        with open(tmp, "wb") as fh:
            savemat(fh, dict(arrays))

    return write


def npz_writer(arrays: Mapping[str, np.ndarray]) -> Callable[[Path], None]:
    # Any-typed: numpy >= 2.1's stubs also declare a bool `allow_pickle` keyword that no array here is named.
    members: Dict[str, Any] = dict(arrays)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **members)

    return write


def json_writer(data: Mapping) -> Callable[[Path], None]:
    return text_writer(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# -- DECA's obj pair --------------------------------------------------------------------------------------
def obj_files(
    name: str,
    vertices: np.ndarray,
    faces: np.ndarray,
    uvcoords: np.ndarray,
    uvfaces: np.ndarray,
    texture: np.ndarray,
    normal_map: np.ndarray,
) -> Dict[str, Callable[[Path], None]]:
    """The four files of DECA's coarse mesh: `<name>.obj`, `.mtl`, `.png` (texture), `_normals.png`."""
    return {
        f"{name}.obj": text_writer(coarse_obj_text(name, vertices, faces, uvcoords, uvfaces)),
        f"{name}.mtl": text_writer(mtl_text(name)),
        f"{name}.png": image_writer(texture),
        f"{name}_normals.png": image_writer(normal_map),
    }


def write_item(outputs: OutputSet, files: Mapping[str, Tuple[bool, Callable[[Path], None]]]) -> List[Path]:
    """Write an item's files ({relative name: (inside the item folder?, writer)}) and commit them together.

    Raises:
        DecaenvError: a file could not be written (nothing of the item is left behind).
    """
    try:
        for relative, (in_folder, writer) in files.items():
            outputs.write(outputs.path(relative, in_folder), writer)
        return outputs.commit()
    except OSError as exc:
        outputs.discard()
        raise DecaenvError(
            f"cannot write the outputs of {outputs.name} in {outputs.root}: {exc.strerror or exc}",
            hint="check free space and permissions of the output folder",
        ) from exc
    except BaseException:
        outputs.discard()
        raise


def existing_outputs(root: Path, name: str, relatives: Mapping[str, bool]) -> bool:
    """True when every expected output of an item already exists (for --skip-existing)."""
    return all(((root / name) if inside else root).joinpath(rel).is_file() for rel, inside in relatives.items())

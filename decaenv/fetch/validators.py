"""Content validators: does a file hold what DECA will read from it (keys, shapes, image sizes)?

One registry, keyed by the manifest's `validate.kind`. A validator takes the file and its `Validator`
(parameters from the manifest) and returns a one-line summary, or raises `IntegrityError` (code
"invalid-content") naming what is wrong. Except for `flame-model`, which uses the runtime's own
chumpy-free loader so that "valid" means "the runtime can load it", none of them imports numpy or torch
(see `decaenv.fetch.structure`).
"""

from __future__ import annotations

import os
import struct
import zipfile
from typing import Callable, Dict, Optional

from decaenv._typing import StrPath
from decaenv.errors import DataError, IntegrityError
from decaenv.fetch.errors import fetch_error
from decaenv.fetch.manifest import Validator
from decaenv.fetch.sniff import EXPECTED_KIND, describe_kind, read_head, sniff

ValidatorFn = Callable[[str, Validator], str]
VALIDATORS: Dict[str, ValidatorFn] = {}


def register(kind: str) -> Callable[[ValidatorFn], ValidatorFn]:
    def deco(fn: ValidatorFn) -> ValidatorFn:
        VALIDATORS[kind] = fn
        return fn

    return deco


def _invalid(path: str, text: str, hint: str = "fetch it again from the official source") -> IntegrityError:
    return fetch_error("invalid-content", f"{os.path.basename(path)}: {text}", hint=hint, path=path, cls=IntegrityError)


#: Bumped when a validator checks more than before, so cached "valid" results of the old checks are redone.
VALIDATORS_VERSION = 2


def validator_key(validator: Validator) -> str:
    """A stable string naming a validator, its version and its parameters (for the hash cache)."""
    return f"{validator.kind}@{VALIDATORS_VERSION}" + repr(validator.params)


def validate(path: StrPath, validator: Optional[Validator]) -> str:
    """Run `validator` on `path` (checks the payload kind first). Returns a summary line.

    Raises:
        IntegrityError: the content is not what DECA expects (code "invalid-content"), or is an HTML page
            (code "html-page").
    """
    path = str(path)
    kind = sniff(read_head(path))
    if kind in ("html", "lfs-pointer", "empty"):
        raise fetch_error(
            "html-page" if kind == "html" else "invalid-content",
            f"{os.path.basename(path)} is {describe_kind(kind)}, not the data file",
            hint="fetch it again",
            path=path,
            cls=IntegrityError,
        )
    if validator is None:
        return f"{describe_kind(kind)}"
    expected = EXPECTED_KIND.get(validator.kind)
    if expected and kind not in expected:
        raise _invalid(path, f"is {describe_kind(kind)}, expected {' or '.join(describe_kind(k) for k in expected)}")
    fn = VALIDATORS.get(validator.kind)
    if fn is None:
        raise DataError(
            f"unknown validator kind {validator.kind!r} in the manifest", hint="known: " + ", ".join(sorted(VALIDATORS))
        )
    try:
        return fn(path, validator)
    except IntegrityError:
        raise
    except DataError as exc:
        raise _invalid(path, exc.message, exc.hint or "fetch it again") from None


# --------------------------------------------------------------------------------------------- images


def image_size(path: str) -> tuple:
    """(format, width, height) of a PNG or JPEG, read from its header."""
    with open(path, "rb") as fh:
        head = fh.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return "png", width, height
        if head.startswith(b"\xff\xd8"):
            fh.seek(2)
            return ("jpeg",) + _jpeg_size(fh)
    raise DataError("is not a PNG or JPEG image")


def _jpeg_size(fh) -> tuple:
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            raise DataError("is a damaged JPEG (no frame header)")
        code = marker[1]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue
        (length,) = struct.unpack(">H", fh.read(2))
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
            _precision, height, width = struct.unpack(">BHH", fh.read(5))
            return width, height
        fh.seek(length - 2, 1)


@register("image")
def check_image(path: str, v: Validator) -> str:
    fmt, width, height = image_size(path)
    want = (v.param("width"), v.param("height"))
    if v.param("format") and fmt != v.param("format"):
        raise _invalid(path, f"is a {fmt.upper()} image, expected {v.param('format').upper()}")
    if None not in want and (width, height) != want:
        raise _invalid(path, f"is {width}×{height}, DECA expects {want[0]}×{want[1]}")
    return f"{fmt.upper()} {width}×{height}"


# ---------------------------------------------------------------------------------------------- mesh


@register("obj-mesh")
def check_obj(path: str, v: Validator) -> str:
    counts = {"v": 0, "vt": 0, "f": 0}
    with open(path, "rb") as fh:
        for line in fh:
            tag = line.split(None, 1)[0] if line.strip() else b""
            key = tag.decode("latin1")
            if key in counts:
                counts[key] += 1
    want = {"v": v.param("vertices"), "vt": v.param("uvs"), "f": v.param("faces")}
    wrong = [
        f"{counts[k]} {k}" + f" (expected {want[k]})" for k in counts if want[k] is not None and counts[k] != want[k]
    ]
    if wrong:
        raise _invalid(path, "mesh has " + ", ".join(wrong))
    return f"{counts['v']} v / {counts['vt']} vt / {counts['f']} f"


# --------------------------------------------------------------------------------------------- numpy


@register("npy-array")
def check_npy_array(path: str, v: Validator) -> str:
    from decaenv.fetch.structure import ArrayInfo, outline_npy

    info = outline_npy(path)
    if not isinstance(info, ArrayInfo):
        raise _invalid(path, "holds pickled objects, expected a plain array")
    shape, dtype = v.param("shape"), v.param("dtype")
    if shape is not None and tuple(info.shape) != tuple(shape):
        raise _invalid(path, f"array shape {info.shape}, expected {tuple(shape)}")
    if dtype is not None and info.dtype != dtype:
        raise _invalid(path, f"array dtype {info.dtype}, expected {dtype}")
    return f"array {info.dtype} {info.shape}"


@register("npy-dict")
def check_npy_dict(path: str, v: Validator) -> str:
    from decaenv.fetch.structure import outline_npy

    obj = outline_npy(path)
    if not isinstance(obj, dict):
        raise _invalid(path, f"holds {type(obj).__name__}, expected a pickled dict")
    missing = [k for k in v.param("keys", ()) if k not in obj]
    if missing:
        raise _invalid(path, "dict lacks key(s) " + ", ".join(missing))
    return f"dict with {len(obj)} keys"


@register("dense-template")
def check_dense_template(path: str, v: Validator) -> str:
    """DECA's `texture_data_<S>.npy`: the runtime's own validator (`decaenv.uvlayout`), so fetch, the doctor and
    `decaenv reconstruct` accept exactly the same files."""
    from decaenv.loaders.safe_pickle import load_object_npy
    from decaenv.uvlayout import validate_dense_template

    template = validate_dense_template(
        load_object_npy(path, "dense template"),
        os.path.basename(path),
        n_vertices=v.param("vertices"),
        size=v.param("img_size"),
    )
    return (
        f"dense template: {len(template['valid_pixel_ids'])} valid texels of a {len(template['x_coords'])}-texel "
        f"grid, {len(template['f'])} faces"
    )


@register("npz-keys")
def check_npz(path: str, v: Validator) -> str:
    from decaenv.fetch.structure import outline_npz
    from decaenv.fetch.zipcheck import verify_zip_crc

    arrays = outline_npz(path)
    verify_zip_crc(path)
    missing = [k for k in v.param("keys", ()) if k not in arrays]
    if missing:
        raise _invalid(path, f"npz lacks array(s) {', '.join(missing)} (has: {', '.join(sorted(arrays)) or 'none'})")
    return ", ".join(f"{k} {arrays[k].shape}" for k in v.param("keys", ()))


# ---------------------------------------------------------------------------------------- checkpoint


@register("deca-checkpoint")
def check_checkpoint(path: str, v: Validator) -> str:
    from decaenv.deca_layout import checkpoint_layout
    from decaenv.fetch.structure import ArrayInfo, outline_torch

    ckpt = outline_torch(path)
    if not isinstance(ckpt, dict):
        raise _invalid(path, "is a torch file but not a dict of networks")
    layout = checkpoint_layout()
    missing_nets = [n for n in layout if n not in ckpt]
    if missing_nets:
        raise _invalid(path, f"checkpoint lacks {', '.join(missing_nets)} (has: {', '.join(map(str, ckpt))})")
    tensors = 0
    for net, keys in layout.items():
        state = ckpt[net]
        missing = [k for k in keys if k not in state]
        if missing:
            raise _invalid(path, f"{net} lacks {len(missing)} key(s), e.g. {missing[0]}")
        for key, shape in keys.items():
            info = state[key]
            if not isinstance(info, ArrayInfo) or tuple(info.shape) != tuple(shape):
                got = info.shape if isinstance(info, ArrayInfo) else type(info).__name__
                raise _invalid(path, f"{net}.{key} has shape {got}, expected {shape}")
            tensors += 1
    if zipfile.is_zipfile(path):
        from decaenv.fetch.zipcheck import verify_zip_crc

        verify_zip_crc(path)
    return f"checkpoint: {tensors} tensors in {', '.join(layout)}" + (", optimizer state" if "opt" in ckpt else "")


@register("torch-state-dict")
def check_state_dict(path: str, v: Validator) -> str:
    """A `torch.save`d state dict (face_alignment's S3FD / 2DFAN4 weights): its tensor count and the shapes of
    a few characteristic keys (`tensors`; `shapes` = [[name, shape], ...])."""
    from decaenv.fetch.structure import ArrayInfo, outline_torch

    state = outline_torch(path)
    if not isinstance(state, dict):
        raise _invalid(path, f"holds {type(state).__name__}, expected a state dict")
    count = sum(1 for value in state.values() if isinstance(value, ArrayInfo))
    want = v.param("tensors")
    if want is not None and count != want:
        raise _invalid(path, f"state dict has {count} tensors, expected {want}")
    for key, shape in dict(v.param("shapes", ())).items():
        info = state.get(key)
        if not isinstance(info, ArrayInfo):
            raise _invalid(path, f"state dict lacks {key}")
        if tuple(info.shape) != tuple(shape):
            raise _invalid(path, f"{key} has shape {tuple(info.shape)}, expected {tuple(shape)}")
    return f"state dict: {count} tensors"


@register("torchscript")
def check_torchscript(path: str, v: Validator) -> str:
    """A TorchScript archive (`torch.jit.save`: a zip with `<name>/data.pkl` and `<name>/code/`), as the
    face_alignment 1.3.5–1.4.x landmark networks are."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _invalid(path, f"is not a readable zip ({exc})") from None
    has_data = any(n.endswith("/data.pkl") for n in names)
    has_code = any("/code/" in n for n in names)
    if not (has_data and has_code):
        raise _invalid(path, "is a zip but not a TorchScript archive (no data.pkl and code/)")
    return f"TorchScript archive, {len(names)} members"


# --------------------------------------------------------------------------------------------- FLAME


@register("flame-model")
def check_flame(path: str, v: Validator) -> str:
    """FLAME through the runtime's own chumpy-free loader, then DECA's topology/component needs."""
    from decaenv.loaders.flame import deca_compatibility, load_flame

    model = load_flame(path)
    reasons = deca_compatibility(model) if v.param("deca", True) else []
    if reasons:
        raise _invalid(
            path,
            "FLAME model unusable with DECA: " + "; ".join(reasons),
            hint="use generic_model.pkl from FLAME 2020 (FLAME2020.zip)",
        )
    return (
        f"FLAME ({model.kind}): {model.v_template.shape[0]} vertices, {model.f.shape[0]} faces, "
        f"{model.n_components} shape+expression components"
    )

"""From an input item to DECA crops: the largest face (DECA's rule) or every face (`--faces all`), and the
codes of a set of crops. Shared by `transfer`, `animate` and `reconstruct --faces all`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Sequence

import numpy as np

from decaenv.errors import InputError, UsageError
from decaenv.paths import DataDir

if TYPE_CHECKING:
    from decaenv.runtime.crop import Crop
    from decaenv.runtime.detectors import DetectorChoice
    from decaenv.runtime.inputs import Item

FACES_CHOICES = ("largest", "all")


@dataclass
class Face:
    """One face to reconstruct.

    Attributes:
        name: output name (`<item>` or `<item>_face<k>`). item: the input item (`inputs.Item`).
        crop: `crop.Crop`. image: the full (H, W, 3) uint8 picture.
    """

    name: str
    item: Item
    crop: Crop
    image: np.ndarray


def check_faces(value: str) -> str:
    """Validate `--faces`. Raises UsageError."""
    choice = (value or "largest").lower()
    if choice not in FACES_CHOICES:
        raise UsageError(f"--faces takes largest or all, got {value!r}")
    return choice


def crops_of(image: np.ndarray, item, *, iscrop: bool, detector, faces: str = "largest") -> List[Crop]:
    """The crops of one picture: one (DECA's choice of face) or one per detected face, largest first.

    With `faces="all"` a landmark file next to the image or `--iscrop false` still give one crop.

    Raises:
        InputError: no face found.
    """
    from decaenv.runtime.crop import make_crop
    from decaenv.runtime.datasets import find_face
    from decaenv.runtime.inputs import find_landmark_file

    source = item.source if item.frame is None else None
    use_all = (
        faces == "all"
        and iscrop
        and detector is not None
        and detector.name != "none"
        and (source is None or find_landmark_file(source) is None)
    )
    if not use_all:
        box, kind, origin = find_face(image, source, iscrop=iscrop, detector=detector, label=item.label)
        return [make_crop(image, box, kind, origin)]
    found = detector.detect_faces(image)
    if not found:
        raise InputError(
            f"no face found in {item.label} (detector {detector.name})",
            hint="if the image is already a face crop pass --iscrop false",
        )
    return [
        make_crop(image, d.box, d.kind, f"detector:{d.detector or detector.name}:face{k}") for k, d in enumerate(found)
    ]


def prepare(item, name: str, *, iscrop: bool, detector, faces: str = "largest") -> List[Face]:
    """Load an item and crop its face(s); names get `_face<k>` with `faces="all"`. Raises InputError."""
    image = item.load()
    crops = crops_of(image, item, iscrop=iscrop, detector=detector, faces=faces)
    if faces != "all":
        return [Face(name, item, crops[0], image)]
    return [Face(f"{name}_face{k}", item, crop, image) for k, crop in enumerate(crops)]


def encode_faces(deca, faces: Sequence[Face]):
    """DECA's codes of the faces' crops (one batch). Returns the codedict."""
    import torch

    images = torch.from_numpy(np.stack([f.crop.image for f in faces])).to(deca.device)
    return deca.encode(images)


def load_one(path, *, iscrop: bool, detector, what: str) -> Face:
    """The (largest) face of one image file, for a single-image role (`--source`). Raises InputError."""
    from pathlib import Path

    from decaenv.runtime.inputs import Item, classify, image_name

    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{what} {path} does not exist", hint="pass an image file", path=path)
    if classify(path) not in ("image", "unknown"):
        raise InputError(f"{what} {path} is not an image", hint="pass one image file (JPEG, PNG, BMP, WebP)", path=path)
    item = Item(name=image_name(path), source=path)
    return prepare(item, item.name, iscrop=iscrop, detector=detector)[0]


def make_detector(iscrop: bool, name: str, device: str, data_dir: Optional[DataDir] = None) -> Optional[DetectorChoice]:
    """The face detector for a run (None with `--iscrop false`); weight files (mtcnn/) are read from `data_dir`
    (None: the resolved default data dir)."""
    if not iscrop:
        return None
    from decaenv.runtime.detectors import create_detector

    return create_detector(name, device, data_dir=data_dir.path if data_dir is not None else None)

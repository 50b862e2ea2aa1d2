"""Face crops for inputs (landmark files, detector or whole image) and DECA's `TestData` dataset shape.

`TestData(testpath, iscrop=True, crop_size=224, scale=1.25, face_detector='fan', sample_step=10)` returns
DECA's dict per item (`image`, `imagename`, `tform`, `original_image`), so code written against
`decalib.datasets.datasets.TestData` keeps working; unlike DECA it honours `sample_step`, reads grayscale
images and raises a clear error when no face is found (DECA silently uses the whole image, with h and w
swapped, deca-spec §7).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union, cast

import numpy as np

from decaenv.errors import InputError
from decaenv.runtime.crop import CROP_SIZE, SCALE, Crop, landmarks_box, make_crop, read_landmark_file
from decaenv.runtime.detectors import Detector
from decaenv.runtime.inputs import Item, expand_inputs, find_landmark_file

Box = Tuple[float, float, float, float]


def find_face(
    image: np.ndarray, source: Optional[Path], *, iscrop: bool, detector: Optional[Detector], label: str = ""
) -> Tuple[Optional[Box], str, str]:
    """Where to crop, the way DECA's `TestData` decides: (box or None for the whole image, box kind, origin).

    Order: `--iscrop false` → whole image; a landmark file next to the source (`.mat` then `.txt`) → its
    68 points ("kpt68"); else the detector (FAN → "kpt68", MTCNN → "bbox"; `auto` falls back to MTCNN per
    image where FAN finds no face); `none` detector → whole image.

    Args:
        image: (H, W, 3) uint8 RGB. source: the image file (for landmark files), or None.
        detector: a detector, or None when `iscrop` is False.
    Raises:
        InputError: no face found, or an unreadable landmark file.
    """
    label = label or (str(source) if source else "image")
    if not iscrop:
        return None, "", "full image (--iscrop false)"
    landmark_file = find_landmark_file(source) if source is not None else None
    if landmark_file is not None:
        return landmarks_box(read_landmark_file(landmark_file)), "kpt68", f"landmarks:{landmark_file.name}"
    if detector is None or detector.name == "none":
        return None, "", "full image (no detector)"
    found = detector.detect(image)
    if found is None:
        raise InputError(
            f"no face found in {label} (detector {detector.name})",
            hint="if the image is already a face crop pass --iscrop false, or put its 68 landmarks in "
            "a .txt file next to it",
        )
    return found.box, found.kind, f"detector:{found.detector or detector.name}"


def find_item_face(image: np.ndarray, item: Item, *, iscrop: bool, detector: Optional[Detector]):
    """`find_face` for one input item (a video frame has no landmark file beside it). Raises InputError."""
    source = item.source if item.frame is None else None
    return find_face(image, source, iscrop=iscrop, detector=detector, label=item.label)


def crop_image(
    image: np.ndarray,
    source: Optional[Path],
    *,
    iscrop: bool,
    detector: Optional[Detector],
    scale: float = SCALE,
    crop_size: int = CROP_SIZE,
    label: str = "",
) -> Crop:
    """`find_face` then `make_crop`: DECA's crop of one image. Raises InputError (see `find_face`)."""
    box, kind, origin = find_face(image, source, iscrop=iscrop, detector=detector, label=label)
    return make_crop(image, box, kind, origin, scale, crop_size)


def original_image_float(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 → (3, H, W) float32 in [0, 1], rounded from float64 like DECA's `image / 255.`."""
    return (image.transpose(2, 0, 1) / 255.0).astype(np.float32)


class TestData:
    """DECA's `TestData`: a sequence of crops.

    Args:
        testpath: an image, a folder, a text list, a video, or a Python list of image paths.
        iscrop: crop round the face (else the whole image). crop_size: 224. scale: 1.25.
        face_detector: "fan", "mtcnn", "none" or "auto" (DECA's default is "fan"; "auto" uses FAN when its
            weights are cached, and MTCNN for images where FAN finds no face). sample_step: every n-th video frame.
        device: device for the detector.
    Raises:
        InputError: nothing to read.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        testpath: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
        iscrop: bool = True,
        crop_size: int = CROP_SIZE,
        scale: float = SCALE,
        face_detector: str = "auto",
        sample_step: int = 10,
        device: str = "cpu",
    ):
        from decaenv.runtime.detectors import create_detector

        paths = list(testpath) if isinstance(testpath, (list, tuple)) else [cast(Union[str, os.PathLike], testpath)]
        self.items: List[Item] = list(expand_inputs(paths, sample_step))
        errors = [i.error for i in self.items if i.error is not None]
        if errors and len(errors) == len(self.items):
            raise errors[0]
        self.items = [i for i in self.items if i.error is None]
        self.iscrop, self.crop_size, self.scale = iscrop, crop_size, scale
        self.detector = create_detector(face_detector, device).detector if iscrop else None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        import torch

        item = self.items[index]
        image = item.load()
        crop = crop_image(
            image,
            item.source if item.frame is None else None,
            iscrop=self.iscrop,
            detector=self.detector,
            scale=self.scale,
            crop_size=self.crop_size,
            label=item.label,
        )
        return {
            "image": torch.from_numpy(np.ascontiguousarray(crop.image)),  # (DECA's are C-ordered)
            "imagename": item.name,
            "tform": torch.tensor(crop.tform, dtype=torch.float32),
            "original_image": torch.from_numpy(original_image_float(image)),
        }

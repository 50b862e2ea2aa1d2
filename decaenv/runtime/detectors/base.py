"""The face-detector interface: an RGB uint8 image in, the chosen face's box (or nothing) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

#: Images whose long side exceeds this are downscaled before detection and the result is mapped back
#: (landmark detectors are inaccurate on very large images).
DETECT_MAX_SIDE = 1280


@dataclass(frozen=True)
class Detection:
    """A detected face in pixels of the image passed in.

    Attributes:
        box: (left, top, right, bottom). kind: "kpt68" (box of 68 landmarks) or "bbox" (a detector box);
        DECA's crop rules differ for the two. landmarks: (68, 2) or (5, 2) points, or None. score: confidence.
        detector: which detector found it, when not the one asked ("mtcnn (fan found no face)").
    """

    box: Tuple[float, float, float, float]
    kind: str
    landmarks: Optional[np.ndarray] = None
    score: float = 1.0
    detector: str = ""

    def scaled(self, factor: float) -> "Detection":
        """The same detection with every coordinate multiplied by `factor`."""
        left, top, right, bottom = self.box
        lms = None if self.landmarks is None else self.landmarks * factor
        return Detection(
            (left * factor, top * factor, right * factor, bottom * factor), self.kind, lms, self.score, self.detector
        )


class Detector:
    """Base class: subclasses implement `_detect` on an image no larger than `DETECT_MAX_SIDE`."""

    name = "base"
    #: Whether several threads may call `detect` at once (else the pipeline serialises its calls).
    thread_safe = False

    def detect(self, image: np.ndarray) -> Optional[Detection]:
        """The face to crop, in pixels of `image` ((H, W, 3) uint8 RGB), or None when there is none."""
        h, w = image.shape[:2]
        factor = max(h, w) / DETECT_MAX_SIDE
        if factor <= 1.0:
            return self._detect(image)
        small = downscale(image, (max(1, round(h / factor)), max(1, round(w / factor))))
        found = self._detect(small)
        if found is None:
            return None
        return found.scaled(w / small.shape[1])

    def _detect(self, image: np.ndarray) -> Optional[Detection]:  # pragma: no cover - abstract
        raise NotImplementedError

    def detect_faces(self, image: np.ndarray) -> List[Detection]:
        """Every face found (`--faces all`), largest box first, in pixels of `image`."""
        h, w = image.shape[:2]
        factor = max(h, w) / DETECT_MAX_SIDE
        if factor <= 1.0:
            found = self._detect_faces(image)
        else:
            small = downscale(image, (max(1, round(h / factor)), max(1, round(w / factor))))
            found = [d.scaled(w / small.shape[1]) for d in self._detect_faces(small)]
        return sorted(found, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))

    def _detect_faces(self, image: np.ndarray) -> List[Detection]:
        """Detectors that see several faces override this; the default is the one face of `_detect`."""
        one = self._detect(image)
        return [] if one is None else [one]

    def describe(self) -> str:
        return self.name


def downscale(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Area-averaging resize of an (H, W, 3) uint8 image to (h, w) (PIL's reducing box filter)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), getattr(Image, "Resampling", Image).BOX))

"""DECA's own detector: face_alignment's FAN (68 landmarks; boxes from its S3FD face detector).

Fixes over DECA's wrapper (FM24, FM39, deca-spec §10.3): `LandmarksType.TWO_D` or `_2D` whichever exists,
the device passed through (DECA leaves face_alignment's default 'cuda'), `compile=False` where supported
(torch.compile costs minutes on CPU), and the weights must already be in face_alignment's torch-hub cache
(`$TORCH_HOME/hub/checkpoints`): a missing file is reported instead of a download attempt that hangs or fails
offline.
"""

from __future__ import annotations

import inspect
import os
import pickle
import warnings
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlparse

import numpy as np

from decaenv.errors import DataError
from decaenv.fan_weights import LANDMARKS_NETWORK, required_weight_urls
from decaenv.runtime.detectors.base import Detection, Detector

__all__ = ["LANDMARKS_NETWORK", "required_weight_urls", "hub_checkpoints_dir", "missing_weights"]

def hub_checkpoints_dir() -> Path:
    """torch hub's checkpoint cache (`$TORCH_HOME/hub/checkpoints`, default `~/.cache/torch/hub/checkpoints`)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_weights() -> List[Path]:
    """Cache files face_alignment would download (empty when everything is cached)."""
    folder = hub_checkpoints_dir()
    missing = []
    for url in required_weight_urls().values():
        if url:
            path = folder / os.path.basename(urlparse(url).path)
            if not path.is_file():
                missing.append(path)
    return missing


def landmarks_type_2d(module) -> object:
    """`LandmarksType.TWO_D` (face-alignment ≥ 1.3.5) or `LandmarksType._2D` (older)."""
    kinds = module.LandmarksType
    for name in ("TWO_D", "_2D"):
        if hasattr(kinds, name):
            return getattr(kinds, name)
    raise DataError("face_alignment's LandmarksType has neither TWO_D nor _2D", hint="pip install -U face-alignment")


class FanDetector(Detector):
    """face_alignment FAN: the first face's 68 landmarks → a DECA "kpt68" box.

    Args:
        device: "cpu" or "cuda[:n]" (passed to face_alignment).
    Raises:
        DataError: face_alignment not installed, or its weights not in the torch-hub cache.
    """

    name = "fan"

    def __init__(self, device: str = "cpu"):
        try:
            import face_alignment
        except ImportError as exc:
            raise DataError(f"face_alignment is not installed ({exc})",
                            hint="pip install 'decaenv[fan]', or use --detector mtcnn") from exc
        missing = missing_weights()
        if missing:
            raise DataError(f"face_alignment's weights are not cached ({', '.join(str(p) for p in missing)}); it "
                            "would download them from adrianbulat.com", hint="run `decaenv fetch fan` (or "
                            "`decaenv fetch --from FILE` with copies), or use --detector mtcnn")
        kwargs = {"device": str(device), "flip_input": False}
        if "compile" in inspect.signature(face_alignment.FaceAlignment.__init__).parameters:
            kwargs["compile"] = False
        try:
            self.model = face_alignment.FaceAlignment(landmarks_type_2d(face_alignment), **kwargs)
        except (OSError, RuntimeError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
            raise DataError(f"face_alignment could not load its networks ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]})", hint="delete the cached files in "
                            f"{hub_checkpoints_dir()} and copy them again") from exc

    def _detect(self, image: np.ndarray) -> Optional[Detection]:
        with warnings.catch_warnings():  # "No faces were detected." is an answer here, not a warning
            warnings.filterwarnings("ignore", message="No faces were detected")
            found = self.model.get_landmarks_from_image(image)
        if not found:
            return None
        return _kpt_detection(found[0])  # DECA takes the first face

    def _detect_faces(self, image: np.ndarray) -> List[Detection]:
        return [_kpt_detection(points) for points in (self.model.get_landmarks_from_image(image) or [])]


def _kpt_detection(points) -> Detection:
    """A "kpt68" detection from FAN's (68, 2|3) landmarks."""
    kpt = np.asarray(points, dtype=np.float64)[:, :2]
    box = (float(kpt[:, 0].min()), float(kpt[:, 1].min()), float(kpt[:, 0].max()), float(kpt[:, 1].max()))
    return Detection(box=box, kind="kpt68", landmarks=kpt)

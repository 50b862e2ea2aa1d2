"""Face detectors, one registry: `fan` (DECA's), `mtcnn` (offline; weights fetched into the data dir's mtcnn/),
`none` (no detection: images are used whole unless they have landmark files). `auto` picks the first usable
of `AUTO_ORDER` and says why.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from decaenv.errors import DataError, UsageError
from decaenv.runtime.detectors.base import DETECT_MAX_SIDE, Detection, Detector

#: The data dir of the `create_detector` call in progress (factories and probes read their weights from it).
_DATA_DIR: "contextvars.ContextVar[Optional[Path]]" = contextvars.ContextVar("decaenv_detector_data_dir",
                                                                            default=None)

__all__ = ["DETECT_MAX_SIDE", "Detection", "Detector", "NoDetector", "REGISTRY", "AUTO_ORDER",
           "DetectorChoice", "availability", "create_detector"]


class NoDetector(Detector):
    """Finds nothing: items are cropped from landmark files, else used whole (`--iscrop false`)."""

    name = "none"

    def __init__(self, device: str = "cpu"):
        self.device = device

    def _detect(self, image) -> Optional[Detection]:
        return None


def _fan(device: str) -> Detector:
    from decaenv.runtime.detectors.fan import FanDetector

    return FanDetector(device)


def _mtcnn(device: str) -> Detector:
    from decaenv.runtime.detectors.mtcnn import MtcnnDetector

    return MtcnnDetector(device, _DATA_DIR.get())


def _fan_available() -> Tuple[bool, str]:
    try:
        import importlib.util

        if importlib.util.find_spec("face_alignment") is None:
            return False, "face_alignment is not installed (pip install 'decaenv[fan]')"
        from decaenv.runtime.detectors.fan import missing_weights

        missing = missing_weights()
    except Exception as exc:  # noqa: BLE001 - a broken optional package only makes the detector unusable
        return False, f"face_alignment does not import ({type(exc).__name__}: {exc})"
    if missing:
        return False, f"face_alignment's weights are not cached ({missing[0].name} missing in {missing[0].parent})"
    return True, "face_alignment FAN with cached weights"


def _mtcnn_available() -> Tuple[bool, str]:
    from decaenv.runtime.detectors.mtcnn import FETCH_HINT, weights_dir

    folder = weights_dir(_DATA_DIR.get())
    if folder is None:
        return False, f"its weights are not in the data dir's mtcnn/ folder ({FETCH_HINT})"
    return True, f"MTCNN with the weights in {folder}"


#: name → (factory, availability probe).
REGISTRY: Dict[str, Tuple[Callable[[str], Detector], Callable[[], Tuple[bool, str]]]] = {
    "fan": (_fan, _fan_available),
    "mtcnn": (_mtcnn, _mtcnn_available),
    "none": (NoDetector, lambda: (True, "no detection")),
}
AUTO_ORDER = ("fan", "mtcnn", "none")


@dataclass(frozen=True)
class DetectorChoice:
    """The detector in use and why it was chosen."""

    detector: Detector
    name: str
    reason: str


def availability(data_dir: Optional[Path] = None) -> List[Tuple[str, bool, str]]:
    """(name, usable, reason) for every registered detector (weights looked up in `data_dir`)."""
    token = _DATA_DIR.set(Path(data_dir) if data_dir is not None else None)
    try:
        return [(name, *probe()) for name, (_, probe) in REGISTRY.items()]
    finally:
        _DATA_DIR.reset(token)


def create_detector(name: str = "auto", device: str = "cpu", data_dir: Optional[Path] = None) -> DetectorChoice:
    """Build a detector by name; "auto" takes the first usable of `AUTO_ORDER`.

    Args:
        data_dir: the data dir whose weight files (mtcnn/) detectors read; None: the resolved default.
    Raises:
        UsageError: unknown name. DataError: an explicitly named detector that cannot be used.
    """
    token = _DATA_DIR.set(Path(data_dir) if data_dir is not None else None)
    try:
        return _create(name, device)
    finally:
        _DATA_DIR.reset(token)


def _create(name: str, device: str) -> DetectorChoice:
    name = (name or "auto").lower()
    if name != "auto" and name not in REGISTRY:
        raise UsageError(f"unknown detector {name!r}", hint=f"use one of auto, {', '.join(REGISTRY)}")
    if name != "auto":
        factory, probe = REGISTRY[name]
        ok, reason = probe()
        if not ok:
            raise DataError(f"detector {name} cannot be used: {reason}")
        return DetectorChoice(factory(device), name, f"requested ({reason})")
    skipped = []
    for candidate in AUTO_ORDER:
        factory, probe = REGISTRY[candidate]
        ok, reason = probe()
        if ok:
            try:
                detector = factory(device)
            except DataError as exc:
                skipped.append(f"{candidate}: {exc.one_line()}")
                continue
            why = f"auto: {reason}" + (f" ({'; '.join(skipped)})" if skipped else "")
            return DetectorChoice(detector, candidate, why)
        skipped.append(f"{candidate}: {reason}")
    raise DataError("no face detector can be used: " + "; ".join(skipped))  # unreachable: "none" always works

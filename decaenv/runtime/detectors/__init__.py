"""Face detectors, one registry: `fan` (DECA's), `mtcnn` (offline; weights fetched into the data dir's mtcnn/),
`none` (no detection: images are used whole unless they have landmark files). `auto` picks the first usable
of `AUTO_ORDER` and says why; when that is FAN and MTCNN is usable too, images where FAN finds no face are
cropped with MTCNN (`FallbackDetector`; the crop's source says so).
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from decaenv.errors import DataError, UsageError
from decaenv.runtime.detectors.base import DETECT_MAX_SIDE, Detection, Detector

#: The data dir of the call in progress (`create_detector`, `auto_plan`, `availability`): probes and factories
#: read weight files (mtcnn/) from it; None: the resolved default data dir.
_DATA_DIR: "contextvars.ContextVar[Optional[Path]]" = contextvars.ContextVar("decaenv_detector_data_dir", default=None)

__all__ = [
    "DETECT_MAX_SIDE",
    "Detection",
    "Detector",
    "NoDetector",
    "FallbackDetector",
    "REGISTRY",
    "AUTO_ORDER",
    "AutoPlan",
    "DetectorChoice",
    "auto_plan",
    "availability",
    "create_detector",
    "FALLBACK_NOTE",
]

#: Appended to the detector name of a crop that the fallback found ("mtcnn (fan found no face)").
FALLBACK_NOTE = "found no face"


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


class FallbackDetector(Detector):
    """`primary` per image, and `fallback` for the images where it finds no face.

    Args:
        primary, fallback: detectors. Attributes: fallbacks: how many images the fallback cropped.
    """

    def __init__(self, primary: Detector, fallback: Detector):
        self.primary, self.fallback = primary, fallback
        self.name = primary.name
        self.thread_safe = primary.thread_safe and fallback.thread_safe
        self.fallbacks = 0  # counted under the GIL; a lost increment under threads only miscounts a note

    def detect(self, image) -> Optional[Detection]:
        found = self.primary.detect(image)
        if found is not None:
            return found
        found = self.fallback.detect(image)
        if found is None:
            return None
        self.fallbacks += 1
        return replace(found, detector=f"{self.fallback.name} ({self.primary.name} {FALLBACK_NOTE})")

    def detect_faces(self, image) -> List[Detection]:
        """Every face the primary finds, else every face the fallback finds (`--faces all`)."""
        found = self.primary.detect_faces(image)
        if found:
            return found
        found = self.fallback.detect_faces(image)
        if found:
            self.fallbacks += 1
        note = f"{self.fallback.name} ({self.primary.name} {FALLBACK_NOTE})"
        return [replace(d, detector=note) for d in found]

    def describe(self) -> str:
        return f"{self.primary.name}, {self.fallback.name} where {self.primary.name} finds no face"


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
        return False, (
            f"face_alignment's weights are not cached ({', '.join(p.name for p in missing)} missing in "
            f"{missing[0].parent}; `decaenv fetch fan`)"
        )
    return True, "face_alignment FAN with cached weights"


def _mtcnn_available() -> Tuple[bool, str]:
    try:
        from decaenv.runtime.detectors.mtcnn import FETCH_HINT, weights_dir
    except ImportError as exc:  # torch missing or broken: the doctor still asks
        return False, f"MTCNN needs torch ({type(exc).__name__}: {exc})"

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


@dataclass(frozen=True)
class AutoPlan:
    """What `auto` will use, decided from the availability probes alone (no network is loaded).

    Attributes:
        name: "fan", "mtcnn" or "none". fallback: "mtcnn" when FAN is used and MTCNN can crop the images FAN
        finds no face in, else None. reason: one line. skipped: (name, why not) of the detectors passed over.
    """

    name: str
    fallback: Optional[str]
    reason: str
    skipped: Tuple[Tuple[str, str], ...] = ()

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "fallback": self.fallback,
            "reason": self.reason,
            "skipped": [list(s) for s in self.skipped],
        }


@contextlib.contextmanager
def _data_dir(data_dir: Optional[Path]) -> Iterator[None]:
    token = _DATA_DIR.set(Path(data_dir) if data_dir is not None else None)
    try:
        yield
    finally:
        _DATA_DIR.reset(token)


def availability(data_dir: Optional[Path] = None) -> List[Tuple[str, bool, str]]:
    """(name, usable, reason) for every registered detector (weight files looked up in `data_dir`)."""
    with _data_dir(data_dir):
        return [(name, *probe()) for name, (_, probe) in REGISTRY.items()]


def auto_plan(exclude: Tuple[str, ...] = (), data_dir: Optional[Path] = None) -> AutoPlan:
    """The first usable of `AUTO_ORDER` (minus `exclude`), its fallback, and why (weights in `data_dir`)."""
    with _data_dir(data_dir):
        return _auto_plan(exclude)


def _auto_plan(exclude: Tuple[str, ...]) -> AutoPlan:
    skipped: List[Tuple[str, str]] = []
    for candidate in AUTO_ORDER:
        if candidate in exclude:
            continue
        ok, reason = REGISTRY[candidate][1]()
        if not ok:
            skipped.append((candidate, reason))
            continue
        fallback = None
        if candidate == "fan" and "mtcnn" not in exclude:
            mtcnn_ok, mtcnn_why = REGISTRY["mtcnn"][1]()
            fallback = "mtcnn" if mtcnn_ok else None
            reason += (
                "; MTCNN for images where FAN finds no face"
                if mtcnn_ok
                else f"; no fallback where FAN finds no face ({mtcnn_why})"
            )
        return AutoPlan(candidate, fallback, reason, tuple(skipped))
    return AutoPlan("none", None, "no detector usable", tuple(skipped))  # unreachable: "none" always works


def create_detector(name: str = "auto", device: str = "cpu", data_dir: Optional[Path] = None) -> DetectorChoice:
    """Build a detector by name; "auto" takes the first usable of `AUTO_ORDER` (FAN with MTCNN as its
    per-image fallback when both are usable).

    Args:
        data_dir: the data dir whose weight files (mtcnn/) detectors read; None: the resolved default.
    Raises:
        UsageError: unknown name. DataError: an explicitly named detector that cannot be used.
    """
    with _data_dir(data_dir):
        return _create(name, device)


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
    failed: List[Tuple[str, str]] = []
    while True:
        plan = _auto_plan(tuple(n for n, _ in failed))
        try:
            detector = REGISTRY[plan.name][0](device)
        except DataError as exc:
            if plan.name == "none":
                raise
            failed.append((plan.name, exc.one_line()))
            continue
        reason = plan.reason
        if plan.fallback:
            try:
                detector = FallbackDetector(detector, REGISTRY[plan.fallback][0](device))
            except DataError as exc:
                reason = reason.split(";")[0] + f"; no fallback where FAN finds no face ({exc.one_line()})"
        passed = list(plan.skipped) + failed
        why = f"auto: {reason}" + (f" ({'; '.join(f'{n}: {r}' for n, r in passed)})" if passed else "")
        return DetectorChoice(detector, plan.name, why)

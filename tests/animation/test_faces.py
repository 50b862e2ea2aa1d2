"""`Detector.detect_faces` (`--faces all`): every face, largest first, mapped back from the detection scale."""

import numpy as np

from decaenv.runtime.detectors.base import Detection, Detector
from decaenv.runtime.detectors.fan import FanDetector


class _FakeFan:
    """face_alignment's `get_landmarks_from_image`: two faces, the small one first (as FAN may order them)."""

    def __init__(self, faces):
        self.faces = faces

    def get_landmarks_from_image(self, image):
        return [f.copy() for f in self.faces]


def _square_points(x, y, side):
    t = np.linspace(0, 1, 68)
    return np.stack([x + side * t, y + side * t[::-1]], 1)


def test_fan_returns_every_face_largest_first_in_full_resolution():
    detector = object.__new__(FanDetector)  # no networks: the model is replaced by a fake
    detector.model = _FakeFan([_square_points(10, 10, 20), _square_points(100, 50, 60)])
    image = np.zeros((200, 300, 3), np.uint8)
    found = detector.detect_faces(image)
    assert [d.kind for d in found] == ["kpt68", "kpt68"]
    assert found[0].box == (100.0, 50.0, 160.0, 110.0) and found[1].box == (10.0, 10.0, 30.0, 30.0)
    assert detector.detect(image).box == (10.0, 10.0, 30.0, 30.0)  # DECA's default stays FAN's first face
    big = np.zeros((2000, 2560, 3), np.uint8)  # detected at half size (long side 1280), boxes mapped back
    found = detector.detect_faces(big)
    assert found[0].box == (200.0, 100.0, 320.0, 220.0)


def test_single_face_detectors_give_their_one_face():
    class One(Detector):
        name = "one"

        def _detect(self, image):
            return Detection((1.0, 2.0, 3.0, 4.0), "bbox")

    class Nothing(Detector):
        name = "nothing"

        def _detect(self, image):
            return None

    image = np.zeros((50, 50, 3), np.uint8)
    assert [d.box for d in One().detect_faces(image)] == [(1.0, 2.0, 3.0, 4.0)]
    assert Nothing().detect_faces(image) == []


def test_fallback_detector_gives_every_face_of_the_fallback():
    from decaenv.runtime.detectors import FallbackDetector

    class Two(Detector):
        name = "mtcnn"

        def _detect_faces(self, image):
            return [Detection((0.0, 0.0, 5.0, 5.0), "bbox"), Detection((0.0, 0.0, 9.0, 9.0), "bbox")]

    class Blind(Detector):
        name = "fan"

        def _detect(self, image):
            return None

    both = FallbackDetector(Blind(), Two())
    found = both.detect_faces(np.zeros((40, 40, 3), np.uint8))
    assert [d.box[2] for d in found] == [9.0, 5.0] and found[0].detector == "mtcnn (fan found no face)"
    assert both.fallbacks == 1

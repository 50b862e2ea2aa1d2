"""Face detectors: the registry, MTCNN (weights fetched from facenet-pytorch's wheel), FAN (face_alignment) offline."""

import functools

import numpy as np
import pytest
import skimage.data

from decaenv.errors import DataError, UsageError
from decaenv.runtime import detectors
from decaenv.runtime.detectors.base import DETECT_MAX_SIDE, Detection, Detector
from decaenv.runtime.detectors.mtcnn import weights_dir


@pytest.fixture(scope="module")
def mtcnn(mtcnn_data_dir):
    return detectors.create_detector("mtcnn", "cpu", data_dir=mtcnn_data_dir).detector


def test_mtcnn_weights_are_found_in_the_data_dir_only(mtcnn_data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)  # no installed facenet-pytorch
    assert weights_dir(mtcnn_data_dir) == mtcnn_data_dir / "mtcnn"
    assert weights_dir(tmp_path) is None
    ok, why = {n: (u, r) for n, u, r in detectors.availability(tmp_path)}["mtcnn"]
    assert not ok and "decaenv fetch mtcnn" in why
    with pytest.raises(DataError, match="mtcnn cannot be used: its weights are not in the data dir"):
        detectors.create_detector("mtcnn", "cpu", data_dir=tmp_path)
    monkeypatch.setenv("DECAENV_DATA_DIR", str(mtcnn_data_dir))  # no data_dir given: the resolved one
    assert weights_dir() == mtcnn_data_dir / "mtcnn"


def test_mtcnn_finds_the_astronaut(mtcnn):
    found = mtcnn.detect(skimage.data.astronaut())
    assert found is not None and found.kind == "bbox" and found.score > 0.9
    left, top, right, bottom = found.box
    assert 150 < left < 210 and 40 < top < 110 and 240 < right < 300 and 150 < bottom < 210
    assert found.landmarks.shape == (5, 2)


def test_mtcnn_finds_nothing_in_noise(mtcnn):
    rng = np.random.default_rng(0)
    assert mtcnn.detect(np.full((200, 200, 3), 128, np.uint8)) is None
    assert mtcnn.detect(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)) is None


def test_large_images_are_detected_downscaled_and_mapped_back(mtcnn):
    from PIL import Image

    image = skimage.data.astronaut()
    big = np.asarray(Image.fromarray(image).resize((3072, 3072), Image.Resampling.BICUBIC))
    small = mtcnn.detect(image)
    large = mtcnn.detect(big)
    assert large is not None
    assert np.allclose(np.array(large.box) / 6.0, small.box, atol=6)


class _Recorder(Detector):
    name = "rec"

    def __init__(self):
        self.shapes = []

    def _detect(self, image):
        self.shapes.append(image.shape)
        return Detection((10.0, 20.0, 30.0, 40.0), "bbox")


def test_base_detector_downscales_big_images():
    rec = _Recorder()
    found = rec.detect(np.zeros((2 * DETECT_MAX_SIDE, DETECT_MAX_SIDE, 3), np.uint8))
    assert rec.shapes == [(DETECT_MAX_SIDE, DETECT_MAX_SIDE // 2, 3)]
    assert found.box == (20.0, 40.0, 60.0, 80.0)


def test_registry_names_and_errors(monkeypatch):
    assert set(detectors.REGISTRY) == {"fan", "mtcnn", "none"}
    with pytest.raises(UsageError, match="unknown detector"):
        detectors.create_detector("yolo")
    monkeypatch.setitem(detectors.REGISTRY, "mtcnn", (detectors.REGISTRY["mtcnn"][0], lambda: (False, "no weights")))
    with pytest.raises(DataError, match="detector mtcnn cannot be used: no weights"):
        detectors.create_detector("mtcnn")


def test_auto_says_what_it_picked_and_why(monkeypatch):
    monkeypatch.setitem(detectors.REGISTRY, "fan", (detectors.REGISTRY["fan"][0], lambda: (False, "weights missing")))
    monkeypatch.setitem(detectors.REGISTRY, "mtcnn", (detectors.REGISTRY["mtcnn"][0], lambda: (False, "not installed")))
    choice = detectors.create_detector("auto")
    assert choice.name == "none" and "fan: weights missing" in choice.reason and "mtcnn: not installed" in choice.reason


# -- FAN (face_alignment) with random weights in a temporary torch-hub cache -----------------------------------


@pytest.fixture(scope="module")
def fan_home(fan_torch_homes):
    """Random 2DFAN4 weights and an S3FD that reports exactly one large face (coarse-scale anchors)."""
    return fan_torch_homes(True)


def test_fan_refuses_to_download(tmp_path, monkeypatch):
    pytest.importorskip("face_alignment")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ok, reason = detectors.REGISTRY["fan"][1]()
    assert not ok and "2DFAN4" in reason
    with pytest.raises(DataError, match="weights are not cached"):
        detectors.create_detector("fan", "cpu")


@pytest.mark.slow
def test_fan_runs_offline_from_the_hub_cache(fan_home, monkeypatch):
    """The real face_alignment code path (LandmarksType, compile=False, device) on random weights."""
    import face_alignment

    monkeypatch.setenv("TORCH_HOME", str(fan_home))
    seen = {}
    real = face_alignment.FaceAlignment.__init__

    @functools.wraps(real)
    def spy(self, landmarks_type, **kwargs):
        seen.update(kwargs, landmarks_type=landmarks_type)
        real(self, landmarks_type, **kwargs)

    monkeypatch.setattr(face_alignment.FaceAlignment, "__init__", spy)
    choice = detectors.create_detector("auto", "cpu")
    assert choice.name == "fan" and "cached weights" in choice.reason
    assert seen["device"] == "cpu" and seen["flip_input"] is False and seen.get("compile", False) is False
    assert int(seen["landmarks_type"]) == 1
    image = np.ascontiguousarray(skimage.data.astronaut()[::8, ::8])  # 64×64: one anchor at the coarse scale
    found = choice.detector.detect(image)
    assert found is not None and found.kind == "kpt68" and found.landmarks.shape == (68, 2)
    left, top, right, bottom = found.box
    assert left == found.landmarks[:, 0].min() and bottom == found.landmarks[:, 1].max()

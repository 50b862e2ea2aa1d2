"""Issue 11 §3: `auto` = FAN when its weights are present, and MTCNN for each image where FAN finds no face;
the run's summary says which images were cropped by the fallback.

Unit tests use stand-in detectors; the end-to-end test runs face_alignment's real code on random weights
whose S3FD classifier says "background" everywhere (decaenv.synthetic.fan), then `decaenv reconstruct`."""

import json

import numpy as np
import pytest
import skimage.data
from PIL import Image

from decaenv.runtime import detectors
from decaenv.runtime.datasets import find_face
from decaenv.runtime.detectors.base import Detection, Detector
from decaenv.runtime.run_types import ItemOutcome, RunSummary


class _Fixed(Detector):
    def __init__(self, name, found):
        self.name, self.found, self.calls = name, found, 0

    def _detect(self, image):
        self.calls += 1
        return self.found


def test_fallback_is_used_only_where_the_primary_finds_nothing():
    box = Detection((1.0, 2.0, 30.0, 40.0), "bbox")
    fan, mtcnn = _Fixed("fan", None), _Fixed("mtcnn", box)
    both = detectors.FallbackDetector(fan, mtcnn)
    image = np.zeros((64, 64, 3), np.uint8)
    found = both.detect(image)
    assert found.box == box.box and found.kind == "bbox" and found.detector == "mtcnn (fan found no face)"
    assert both.fallbacks == 1 and both.name == "fan"
    assert find_face(image, None, iscrop=True, detector=both)[2] == "detector:mtcnn (fan found no face)"
    fan.found = Detection((5.0, 5.0, 50.0, 50.0), "kpt68")
    assert both.detect(image).kind == "kpt68" and mtcnn.calls == 2 and both.fallbacks == 2
    assert find_face(image, None, iscrop=True, detector=both)[2] == "detector:fan"


def _fake(monkeypatch, name, usable, detector=None, error=None):
    def factory(device):
        if error:
            from decaenv.errors import DataError

            raise DataError(error)
        return detector

    monkeypatch.setitem(detectors.REGISTRY, name, (factory, lambda: (usable, f"{name} probe says {usable}")))


def test_auto_builds_fan_with_mtcnn_fallback_and_says_so(monkeypatch):
    fan, mtcnn = _Fixed("fan", None), _Fixed("mtcnn", None)
    _fake(monkeypatch, "fan", True, fan)
    _fake(monkeypatch, "mtcnn", True, mtcnn)
    plan = detectors.auto_plan()
    assert (plan.name, plan.fallback) == ("fan", "mtcnn")
    choice = detectors.create_detector("auto")
    assert isinstance(choice.detector, detectors.FallbackDetector) and choice.name == "fan"
    assert "MTCNN for images where FAN finds no face" in choice.reason
    _fake(monkeypatch, "mtcnn", False)
    choice = detectors.create_detector("auto")
    assert choice.detector is fan and "no fallback where FAN finds no face" in choice.reason
    assert detectors.create_detector("fan").detector is fan  # asked for by name: FAN alone, as DECA


def test_auto_moves_on_when_fan_cannot_load(monkeypatch):
    mtcnn = _Fixed("mtcnn", None)
    _fake(monkeypatch, "fan", True, error="face_alignment could not load its networks (EOFError)")
    _fake(monkeypatch, "mtcnn", True, mtcnn)
    choice = detectors.create_detector("auto")
    assert choice.detector is mtcnn and choice.name == "mtcnn"
    assert "fan: face_alignment could not load its networks" in choice.reason


def test_summary_names_the_fallback_images():
    summary = RunSummary(
        items=[
            ItemOutcome("a", "a.jpg", "ok", crop="detector:fan"),
            ItemOutcome("b", "b.jpg", "ok", crop="detector:mtcnn (fan found no face)"),
        ]
    )
    assert summary.fallbacks() == ["b"] and summary.to_json()["detector_fallbacks"] == ["b"]
    assert summary.fallback_line().startswith("FAN found no face in 1 image(s) (b): cropped with MTCNN")
    assert RunSummary(items=summary.items[:1]).fallback_line() == ""


@pytest.fixture(scope="module")
def blind_fan_home(fan_torch_homes):
    """A TORCH_HOME whose random S3FD finds no face anywhere."""
    return fan_torch_homes(False)


@pytest.mark.slow
def test_reconstruct_auto_falls_back_per_image_and_says_so(
    tmp_path, capsys, monkeypatch, blind_fan_home, reconstruct_data_dir
):
    from decaenv.cli import main

    monkeypatch.setenv("TORCH_HOME", str(blind_fan_home))
    photo = tmp_path / "face.png"
    Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.Resampling.BOX).save(photo)
    code = main(
        [
            "--data-dir",
            str(reconstruct_data_dir),
            "reconstruct",
            "--rasterizer",
            "torch",
            "-i",
            str(photo),
            "-o",
            str(tmp_path / "out"),
            "--save",
            "codes",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "FAN found no face in 1 image(s) (face): cropped with MTCNN instead" in err
    assert (
        "face detector: fan (auto: face_alignment FAN with cached weights; MTCNN for images where FAN finds "
        "no face" in err
    )
    meta = json.loads((tmp_path / "out" / "face" / "face_codes.json").read_text())
    assert meta["crop"]["source"] == "detector:mtcnn (fan found no face)"


def test_weight_urls_follow_face_alignments_own_choice(monkeypatch):
    """1.3.5-1.4.x pick `models_urls.get(<torch major.minor>, default_model_urls)`; 1.5+ a flat `models_urls`."""
    fa_api = pytest.importorskip("face_alignment.api")
    from decaenv.runtime.detectors import fan

    monkeypatch.setattr(fa_api, "default_model_urls", {"2DFAN-4": "https://x/2DFAN4-cd938726ad.zip"}, raising=False)
    monkeypatch.setattr(fa_api, "models_urls", {"1.6": {"2DFAN-4": "https://x/2DFAN4_1.6-c827573f02.zip"}})
    monkeypatch.setattr("torch.__version__", "2.13.0+cpu")
    assert fan.required_weight_urls()["landmarks"] == "https://x/2DFAN4-cd938726ad.zip"
    monkeypatch.setattr("torch.__version__", "1.6.0")
    assert fan.required_weight_urls()["landmarks"] == "https://x/2DFAN4_1.6-c827573f02.zip"
    assert fan.required_weight_urls()["detector"].endswith("/s3fd-619a316812.pth")

"""Issue 11 §3: the doctor says which detector `auto` will use and why (FAN when its weights are present, else
MTCNN, with `decaenv fetch fan` as the fix)."""

import pytest

from decaenv.doctor.checks import python_pkgs
from decaenv.doctor.model import Status
from decaenv.doctor.testing import FakeProbe, make_context


def _run(section):
    return python_pkgs.check_face_detector(make_context(FakeProbe(sections={"detectors": section})))


def _section(name, fallback=None, skipped=()):
    return {"api": True, "plan": {"name": name, "fallback": fallback, "reason": "why", "skipped": list(skipped)},
            "available": {"fan": {"usable": name == "fan", "reason": "r"}, "mtcnn": {"usable": True, "reason": "r"}}}


def test_fan_with_its_weights():
    result = _run(_section("fan", "mtcnn"))
    assert result.status is Status.OK
    assert result.summary == "auto uses FAN, DECA's detector (MTCNN where FAN finds no face)"
    assert result.data["auto"] == "fan" and result.data["fallback"] == "mtcnn"


def test_weights_missing_is_a_warning_with_fetch_fan():
    why = "face_alignment's weights are not cached (s3fd-619a316812.pth missing in /h; `decaenv fetch fan`)"
    result = _run(_section("mtcnn", skipped=[("fan", why)]))
    assert result.status is Status.WARN
    assert result.summary.startswith("auto uses MTCNN, not DECA's FAN: face_alignment's")
    assert result.remediation.commands == ("decaenv fetch fan",)
    assert [(f.kind, f.args["ids"]) for f in result.fixes] == [("fetch", ["fan"])]


def test_face_alignment_not_installed_is_ok_with_a_note():
    result = _run(_section("mtcnn", skipped=[("fan", "face_alignment is not installed (pip install 'decaenv[fan]')")]))
    assert result.status is Status.OK and "decaenv fetch fan" in " ".join(result.details)


def test_the_real_probe_section_follows_torch_home(tmp_path, monkeypatch):
    pytest.importorskip("face_alignment")
    from decaenv.doctor.probes_env import detectors_section
    from decaenv.runtime.detectors.fan import required_weight_urls

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    section = detectors_section({})
    assert section["api"] and section["plan"]["name"] != "fan"
    assert "decaenv fetch fan" in dict(section["plan"]["skipped"])["fan"]
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    for url in required_weight_urls().values():
        (hub / url.rsplit("/", 1)[1]).write_bytes(b"x")
    section = detectors_section({})
    assert section["plan"]["name"] == "fan"
    assert _run(section).summary.startswith("auto uses FAN")


def test_damaged_fan_weights_are_a_warning(tmp_path, monkeypatch):
    """Present is not enough: a file whose sha256 lacks its published prefix is reported (fetch's own status)."""
    from decaenv.fetch.manifest import load_manifest

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    hub = tmp_path / "th" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    names = [e.dest for e in load_manifest().select(["fan"])]
    for name in names:
        (hub / name).write_bytes(b"not the weights")
    ctx = make_context(FakeProbe(sections={"detectors": _section("fan", "mtcnn")}), data_dir=tmp_path / "data")
    result = python_pkgs.check_face_detector(ctx)
    assert result.status is Status.WARN and "fail verification" in result.summary
    assert f"{names[0]}: hash-mismatch" in result.summary
    assert result.remediation.commands == ("decaenv fetch --force fan",)

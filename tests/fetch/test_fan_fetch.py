"""Issue 11 §3: face_alignment's weights (S3FD, 2DFAN4) as manifest files, `decaenv fetch fan`, placed in torch
hub's checkpoint cache, verified by the sha256 prefix in their names, the full sha256 recorded on first use.

Every payload is generated here (small `torch.save` state dicts with the real key names), served by the loopback
server; the shipped manifest is only read (its URLs are compared with face_alignment's own)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _support.fetch_server import Payload, write_manifest

torch = pytest.importorskip("torch")

S3FD_SHAPES = [["conv1_1.weight", [64, 3, 3, 3]], ["conv3_3_norm_mbox_conf.weight", [4, 256, 3, 3]]]
FAN_SHAPES = [["conv1.weight", [64, 3, 7, 7]], ["l3.weight", [68, 256, 1, 1]]]


def _state_dict_bytes(shapes, extra: int = 0, seed: int = 0) -> bytes:
    gen = torch.Generator().manual_seed(seed)
    state = {name: torch.randn(*shape, generator=gen) for name, shape in shapes}
    state.update({f"extra{i}.bias": torch.zeros(2) for i in range(extra)})
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fan_manifest(tmp_path, server, *, detector: bytes, landmarks: bytes, prefix=None, requires=("face-alignment>=1.3.5", "face-alignment>=1.5")):
    """A manifest with the shipped FAN entries' shape, pointing at the loopback server."""
    specs = []
    for (entry_id, stem, ext, data, shapes), req in zip(
            (("fan-detector", "s3fd", ".pth", detector, S3FD_SHAPES),
             ("fan-landmarks", "2DFAN4", ".pth.tar", landmarks, FAN_SHAPES)), requires):
        want = prefix or _sha(data)[:10]
        name = f"{stem}-{want}{ext}"
        server.files[name] = Payload(data)
        specs.append({"id": entry_id, "dest": name, "root": "torch-hub", "group": "fan", "requires": req,
                      "default": False, "sha256_prefix": want,
                      "validate": {"kind": "torch-state-dict", "shapes": shapes},
                      "sources": [{"kind": "https", "url": server.url(name)}]})
    return write_manifest(tmp_path / "fan.toml", specs), [s["dest"] for s in specs]


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "decaenv", *args], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=120)


def test_shipped_entries_use_face_alignments_own_urls_and_name_hashes():
    from decaenv.fetch.manifest import load_manifest

    manifest = load_manifest()
    fan = manifest.groups()["fan"]
    assert [e.id for e in fan] == ["fan-detector", "fan-landmarks", "fan-landmarks-jit"]
    for entry in fan:
        url = entry.sources[0].url
        assert entry.root == "torch-hub" and not entry.default and url.startswith("https://")
        assert os.path.basename(url) == entry.dest  # the name torch hub caches it under
        assert re.search(r"-([0-9a-f]{10})\.", entry.dest).group(1) == entry.sha256_prefix
    fa = pytest.importorskip("face_alignment")
    from face_alignment.detection.sfd import sfd_detector

    urls = {e.sources[0].url for e in fan}
    assert sfd_detector.models_urls["s3fd"] in urls
    import face_alignment.api as api

    table = getattr(api, "default_model_urls", None) or api.models_urls  # 1.3.5-1.4.x: default_model_urls
    assert table["2DFAN-4"] in urls, fa.__version__


def test_fetch_fan_places_files_in_the_hub_cache_and_records_full_hashes(server, tmp_path):
    detector, landmarks = _state_dict_bytes(S3FD_SHAPES, extra=3), _state_dict_bytes(FAN_SHAPES, seed=1)
    manifest, names = _fan_manifest(tmp_path, server, detector=detector, landmarks=landmarks)
    data, hub_home = tmp_path / "data", tmp_path / "torch-home"
    data.mkdir()
    env = {"DECAENV_MANIFEST": str(manifest), "TORCH_HOME": str(hub_home)}
    run = _cli("--data-dir", str(data), "fetch", "fan", "--accept-license", env=env)
    assert run.returncode == 0, run.stderr
    hub = hub_home / "hub" / "checkpoints"
    assert (hub / names[0]).read_bytes() == detector and (hub / names[1]).read_bytes() == landmarks
    assert not list(data.glob("*.pth*"))  # nothing in the data dir itself
    assert f"hub:{names[0]}" in run.stdout and "2/2 file(s) ready" in run.stdout
    records = json.loads((data / ".decaenv" / "lockfile.json").read_text())
    text = json.dumps(records)
    assert _sha(detector) in text and _sha(landmarks) in text  # the full sha256, recorded on first use
    verify = _cli("--data-dir", str(data), "fetch", "--verify", "fan", "--json", env=env)
    assert verify.returncode == 0, verify.stderr
    files = json.loads(verify.stdout)["files"]
    assert [(f["status"], f["hash_source"], f["root"]) for f in files] == [("verified", "first-use", "torch-hub")] * 2
    assert files[0]["path"] == str(hub / names[0])
    listing = _cli("--data-dir", str(data), "fetch", "--list", "fan", env=env)
    assert f"hub:{names[1]}" in listing.stdout and f"torch hub's checkpoint cache {hub}" in listing.stdout
    other = tmp_path / "other-home"  # a copy you already have, imported into another TORCH_HOME
    imported = _cli("--data-dir", str(data), "fetch", "--from", str(hub / names[1]),
                    env=dict(env, TORCH_HOME=str(other)))
    assert imported.returncode == 0, imported.stderr
    assert (other / "hub" / "checkpoints" / names[1]).read_bytes() == landmarks


def test_payload_without_the_published_prefix_is_refused(server, tmp_path, run_fetch, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    detector, landmarks = _state_dict_bytes(S3FD_SHAPES), _state_dict_bytes(FAN_SHAPES)
    manifest, names = _fan_manifest(tmp_path, server, detector=detector, landmarks=landmarks,
                                    prefix="0123456789")
    out = run_fetch(manifest, ids=["fan-detector"])
    err = out.one("fan-detector").error
    assert out.code("fan-detector") == "hash-mismatch" and "does not start with 0123456789" in err.message
    assert not (tmp_path / "th" / "hub" / "checkpoints" / names[0]).exists()
    lock = out.data_dir / ".decaenv" / "lockfile.json"
    assert out.quarantined() and (not lock.exists() or "fan-detector" not in lock.read_text())


def test_copy_face_alignment_downloaded_itself_is_adopted_or_refused(server, tmp_path, monkeypatch):
    from decaenv.fetch.manifest import load_manifest
    from decaenv.fetch.status import verify_entry

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    detector, landmarks = _state_dict_bytes(S3FD_SHAPES), _state_dict_bytes(FAN_SHAPES)
    manifest, names = _fan_manifest(tmp_path, server, detector=detector, landmarks=landmarks)
    hub = tmp_path / "th" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / names[0]).write_bytes(detector)
    (hub / names[1]).write_bytes(landmarks[:-10] + b"0123456789")  # damaged: its sha256 lost the prefix
    data = tmp_path / "data"
    data.mkdir()
    entries = {e.id: e for e in load_manifest(manifest).entries}
    assert verify_entry(entries["fan-detector"], data).status == "hash-unknown"
    broken = verify_entry(entries["fan-landmarks"], data)
    assert broken.status == "hash-mismatch" and "decaenv fetch --force fan-landmarks" in broken.detail
    run = _cli("--data-dir", str(data), "fetch", "fan", "--accept-license", "--offline",
               env={"DECAENV_MANIFEST": str(manifest), "TORCH_HOME": str(tmp_path / "th")})
    assert run.returncode == 1 and "trusted on first use" in run.stdout
    assert "fan-landmarks" in run.stderr and "--offline" in run.stderr


def test_group_takes_the_file_of_the_installed_release(server, tmp_path):
    from decaenv.fetch.manifest import load_manifest

    detector, landmarks = _state_dict_bytes(S3FD_SHAPES), _state_dict_bytes(FAN_SHAPES)
    # pytest is installed: ">=1" applies, "<1" does not; an uninstalled distribution: the whole group.
    manifest, _ = _fan_manifest(tmp_path, server, detector=detector, landmarks=landmarks,
                                requires=("pytest>=1", "pytest<1"))
    assert [e.id for e in load_manifest(manifest).select(["fan"])] == ["fan-detector"]
    manifest, _ = _fan_manifest(tmp_path, server, detector=detector, landmarks=landmarks,
                                requires=("decaenv-no-such-dist>=1", "decaenv-no-such-dist<1"))
    assert [e.id for e in load_manifest(manifest).select(["fan"])] == ["fan-detector", "fan-landmarks"]
    shipped = load_manifest(Path(__file__).resolve().parents[2] / "manifests" / "deca.toml")
    assert all(not e.group for e in shipped.select())  # plain `decaenv fetch` does not take FAN


def test_wrong_shapes_and_a_non_state_dict_are_invalid_content(server, tmp_path, run_fetch, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    wrong = _state_dict_bytes([["conv1_1.weight", [64, 3, 5, 5]], ["conv3_3_norm_mbox_conf.weight", [4, 256, 3, 3]]])
    manifest, _ = _fan_manifest(tmp_path, server, detector=wrong, landmarks=b"<html>nope</html>")
    out = run_fetch(manifest, ids=["fan"])
    assert out.code("fan-detector") == "invalid-content"
    assert "conv1_1.weight has shape (64, 3, 5, 5), expected (64, 3, 3, 3)" in out.one("fan-detector").error.message
    assert out.code("fan-landmarks") in ("html-page", "invalid-content")


def test_manifest_schema_checks_for_the_new_fields(tmp_path):
    from decaenv.errors import DataError
    from decaenv.fetch.manifest import load_manifest

    base = {"id": "w", "dest": "w.pth", "sources": [{"kind": "https", "url": "https://example.org/w.pth"}]}
    for extra, message in (({"root": "elsewhere"}, "root 'elsewhere' is not one of"),
                           ({"sha256_prefix": "xyz"}, "sha256_prefix must be 8 to 63 hex digits"),
                           ({"sha256_prefix": "aaaaaaaa", "sha256": "b" * 64}, "does not start with its sha256_prefix"),
                           ({"requires": "face alignment >> 1"}, "is not a requirement"),
                           ({"group": "w"}, "group 'w' is also a file id")):
        path = write_manifest(tmp_path / "bad.toml", [dict(base, **extra)])
        with pytest.raises(DataError, match=re.escape(message)):
            load_manifest(path)

"""Google Drive: the direct answer, the virus-scan confirmation page, the quota page — against a loopback
server that answers like Drive. The production code path runs unchanged: only the manifest's endpoint
points at 127.0.0.1 (no monkeypatching of gdown or of URL parsing)."""

from __future__ import annotations

import os

import pytest
from _support.fetch_server import Payload, sha, write_manifest

pytest.importorskip("gdown")

DRIVE_ID = "1rp8kdyLPvErw2dTmqtjISRVvQLj6Yzje"


def _manifest(tmp_path, server, data=None, validate=None):
    spec = {"id": "deca-model", "dest": "deca_model.tar",
            "sources": [{"kind": "gdrive", "id": DRIVE_ID, "url": server.base + "/uc?export=download&id={id}"},
                        {"kind": "manual", "url": "https://pan.baidu.com/s/1vlc6cYfeZ2-WEXqNkcMr0A", "code": "7fgl"}]}
    if data is not None:
        spec.update(sha256=sha(data), size=len(data))
    if validate:
        spec["validate"] = {"kind": validate}
    return write_manifest(tmp_path / "m.toml", [spec])


def test_small_file_served_directly(server, tmp_path, run_fetch):
    data = os.urandom(4000)
    server.drive[DRIVE_ID] = Payload(data)
    out = run_fetch(_manifest(tmp_path, server, data))
    assert out.one("deca-model").status.ok and [r["path"] for r in server.log] == ["/uc"]


def test_confirmation_page_is_followed(server, tmp_path, run_fetch):
    data = os.urandom(2_000_000)
    server.drive[DRIVE_ID] = Payload(data)
    out = run_fetch(_manifest(tmp_path, server, data))
    result = out.one("deca-model")
    assert result.status.ok and (out.data_dir / "deca_model.tar").read_bytes() == data
    assert [r["path"] for r in server.log] == ["/uc", "/download"]
    assert "confirm=t" in server.log[1]["query"] and "uuid=" in server.log[1]["query"]
    assert result.source == f"https://drive.google.com/file/d/{DRIVE_ID}/view"


def test_synthetic_checkpoint_through_drive_is_validated(server, tmp_path, run_fetch, procedural_data_dir):
    data = (procedural_data_dir / "deca_model.tar").read_bytes()
    server.drive[DRIVE_ID] = Payload(data)
    out = run_fetch(_manifest(tmp_path, server, validate="deca-checkpoint"))
    result = out.one("deca-model")
    assert result.status.ok and result.status.hash_source == "first-use"
    assert any("trust on first use" in note for note in result.notes)


def test_quota_page(server, tmp_path, run_fetch):
    server.drive[DRIVE_ID] = Payload(os.urandom(2_000_000))
    server.drive_mode = "quota"
    out = run_fetch(_manifest(tmp_path, server))
    err = out.one("deca-model").error
    assert out.code("deca-model") == "gdrive-quota"
    assert "too many users have viewed or downloaded this file recently" in err.message
    assert "decaenv fetch --from" in err.hint and "7fgl" in err.hint and "pan.baidu.com" in err.hint
    assert not (out.data_dir / "deca_model.tar").exists() and not out.partials()
    assert b"Too many users" in out.quarantined()[0].read_bytes() and out.sleeps == []


def test_confirmation_page_forever(server, tmp_path, run_fetch):
    server.drive[DRIVE_ID] = Payload(os.urandom(2_000_000))
    server.drive_mode = "loop"
    out = run_fetch(_manifest(tmp_path, server))
    assert out.code("deca-model") == "gdrive-interstitial"
    assert "Download anyway" in out.one("deca-model").error.hint
    assert not (out.data_dir / "deca_model.tar").exists()


def test_resume_after_a_drop_reresolves_the_confirmation(server, tmp_path, run_fetch):
    data = os.urandom(3_000_000)
    server.drive[DRIVE_ID] = Payload(data, drop_after=1_500_000, drops=1)
    out = run_fetch(_manifest(tmp_path, server, data))
    assert out.one("deca-model").status.ok
    downloads = [r for r in server.log if r["path"] == "/download"]
    assert [r["range"] for r in downloads] == [None, "bytes=1500000-"]


def test_gdown_missing_is_a_one_line_fix(server, tmp_path, run_fetch, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_gdown(name, *args, **kwargs):
        if name.startswith("gdown"):
            raise ImportError("No module named 'gdown'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gdown)
    server.drive[DRIVE_ID] = Payload(b"x")
    out = run_fetch(_manifest(tmp_path, server))
    assert out.code("deca-model") == "gdown-missing" and "pip install 'decaenv[fetch]'" in out.one("deca-model").error.hint

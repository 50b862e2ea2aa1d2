"""Integrity: a corrupt file is never installed, adopted, imported or pinned as the first-use hash."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from _support.faults import run_fetch, send_bytes, write_manifest

from decaenv.cli import main


def _flip_inside_a_tensor(ckpt: bytes) -> bytes:
    """The checkpoint with one byte flipped in the middle of its largest tensor storage (structure intact)."""
    with zipfile.ZipFile(io.BytesIO(ckpt)) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(ckpt)
    header = info.header_offset
    name_len = int.from_bytes(raw[header + 26:header + 28], "little")
    extra_len = int.from_bytes(raw[header + 28:header + 30], "little")
    raw[header + 30 + name_len + extra_len + info.file_size // 2] ^= 0x01
    return bytes(raw)


def _checkpoint_manifest(tmp_path: Path, loopback) -> Path:
    return write_manifest(tmp_path / "m.toml", [
        {"id": "deca-model", "dest": "deca_model.tar", "validate": {"kind": "deca-checkpoint"},
         "sources": [{"kind": "https", "url": loopback.url("/deca_model.tar")}]}])


@pytest.fixture(scope="module")
def checkpoints(procedural_data_dir):
    good = (procedural_data_dir / "deca_model.tar").read_bytes()
    return good, _flip_inside_a_tensor(good)


@pytest.mark.slow  # writes or builds hundreds of MB: in `make test`, not `make test-fast`
def test_flipped_byte_behind_a_valid_206_is_refused_and_not_pinned(loopback, tmp_path, checkpoints):
    """The full-size checkpoint (214 MB written: the suite's only one), resumed with a correct 206."""
    _good, bad = checkpoints
    manifest = _checkpoint_manifest(tmp_path, loopback)
    data = tmp_path / "data"
    loopback.routes["/deca_model.tar"] = send_bytes(bad, drop_after=len(bad) // 3)
    (result,) = run_fetch(manifest, data)
    assert result.error is not None and result.error.code == "invalid-content"
    assert "CRC" in result.error.message and not (data / "deca_model.tar").exists()
    # no first-use record of a corrupt file: a later good download is not refused as hash-mismatch
    assert not (data / ".decaenv" / "lockfile.json").exists()
    assert [p.name for p in data.iterdir() if ".part" in p.name] == []


def _npz(flip: bool) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key in ("a", "b"):
            arr = io.BytesIO()
            np.save(arr, np.arange(4096, dtype=np.float32))
            zf.writestr(f"{key}.npy", arr.getvalue())
    raw = bytearray(buf.getvalue())
    if flip:
        raw[len(raw) // 4] ^= 0x10  # inside a.npy's data: headers and sizes stay right
    return bytes(raw)


def _npz_manifest(tmp_path: Path, loopback) -> Path:
    return write_manifest(tmp_path / "m.toml", [
        {"id": "x", "dest": "x.npz", "validate": {"kind": "npz-keys", "keys": ["a", "b"]},
         "sources": [{"kind": "https", "url": loopback.url("/x.npz")}]}])


def test_npz_with_a_flipped_byte_is_refused_then_a_good_copy_is_accepted(loopback, tmp_path):
    manifest = _npz_manifest(tmp_path, loopback)
    data = tmp_path / "data"
    loopback.routes["/x.npz"] = send_bytes(_npz(flip=True))
    (result,) = run_fetch(manifest, data)
    assert result.error is not None and "CRC" in result.error.message
    assert not (data / "x.npz").exists() and not (data / ".decaenv" / "lockfile.json").exists()
    loopback.routes["/x.npz"] = send_bytes(_npz(flip=False))
    (result,) = run_fetch(manifest, data)
    assert result.ok and (data / "x.npz").read_bytes() == _npz(flip=False)


def test_corrupt_file_already_in_place_is_not_adopted(loopback, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.npz").write_bytes(_npz(flip=True))
    (result,) = run_fetch(_npz_manifest(tmp_path, loopback), data)  # no source: 404
    assert not result.ok and not (data / ".decaenv" / "lockfile.json").exists()


def test_corrupt_file_is_not_imported(loopback, tmp_path):
    mine = tmp_path / "downloads" / "x.npz"
    mine.parent.mkdir()
    mine.write_bytes(_npz(flip=True))
    (result,) = run_fetch(_npz_manifest(tmp_path, loopback), tmp_path / "data", importing=[mine])
    assert result.error is not None and "CRC" in result.error.message
    assert not (tmp_path / "data" / "x.npz").exists() and mine.read_bytes() == _npz(flip=True)


def test_forget_replaces_a_first_use_record_with_one_command(loopback, tmp_path, capsys, monkeypatch):
    loopback.routes["/t.obj"] = send_bytes(b"v 0 0 0\n")
    manifest = write_manifest(tmp_path / "m.toml", [
        {"id": "t", "dest": "t.obj", "sources": [{"kind": "https", "url": loopback.url("/t.obj")}]}])
    data = tmp_path / "data"
    assert run_fetch(manifest, data)[0].ok
    lockfile = data / ".decaenv" / "lockfile.json"
    assert "t" in json.loads(lockfile.read_text())["files"]
    monkeypatch.setenv("DECAENV_MANIFEST", str(manifest))
    assert main(["--data-dir", str(data), "fetch", "--forget", "t"]) == 0
    assert "forgot the first-use record" in capsys.readouterr().out
    assert "t" not in json.loads(lockfile.read_text())["files"]
    (data / "t.obj").unlink()
    loopback.routes["/t.obj"] = send_bytes(b"v 1 1 1\n")  # the upstream file legitimately changed
    assert run_fetch(manifest, data)[0].ok


def test_error_codes_are_a_typed_field():
    from decaenv.errors import IntegrityError
    from decaenv.fetch.errors import FetchCode, fetch_error

    exc = fetch_error("hash-mismatch", "x", cls=IntegrityError)
    assert exc.code is FetchCode.HASH_MISMATCH and exc.code == "hash-mismatch"
    assert exc.code.quarantine and not exc.code.resumable
    assert FetchCode.TRUNCATED.resumable and FetchCode.DISK_SPACE.final and FetchCode.OFFLINE.by_hand
    with pytest.raises(ValueError):
        fetch_error("no-such-code", "x")

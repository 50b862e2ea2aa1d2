"""Integrity: a corrupt file is never installed, adopted, imported or pinned as the first-use hash."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from _support.faults import run_fetch, send_bytes, write_manifest

from decaenv.cli import main
from decaenv.errors import DataError


def _flip_inside(blob: bytes, member: zipfile.ZipInfo) -> bytes:
    """`blob` (a zip) with one byte flipped in the middle of `member`'s stored data (structure intact)."""
    raw = bytearray(blob)
    header = member.header_offset
    name_len = int.from_bytes(raw[header + 26 : header + 28], "little")
    extra_len = int.from_bytes(raw[header + 28 : header + 30], "little")
    raw[header + 30 + name_len + extra_len + member.file_size // 2] ^= 0x01
    return bytes(raw)


def _flip_inside_a_tensor(ckpt: bytes) -> bytes:
    """The torch file with one byte flipped in the middle of its largest tensor storage."""
    with zipfile.ZipFile(io.BytesIO(ckpt)) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    return _flip_inside(ckpt, info)


def _torch_file() -> bytes:
    """A small `torch.save` file: the zip of stored members a checkpoint is."""
    import torch

    buffer = io.BytesIO()
    torch.save({"E_flame": {"w": torch.arange(65536, dtype=torch.float32), "b": torch.zeros(8)}}, buffer)
    return buffer.getvalue()


def test_flipped_tensor_byte_fails_the_zip_crc(tmp_path):
    """What catches a corrupt checkpoint whose structure is intact: the CRC of the tensor's zip member."""
    from decaenv.fetch.zipcheck import verify_zip_crc

    good, bad = tmp_path / "good.tar", tmp_path / "bad.tar"
    good.write_bytes(_torch_file())
    bad.write_bytes(_flip_inside_a_tensor(good.read_bytes()))
    assert verify_zip_crc(good) > 65536 * 4
    with pytest.raises(DataError, match="CRC"):
        verify_zip_crc(bad)


def test_the_checkpoint_validator_checks_every_crc_of_the_full_size_checkpoint(procedural_data_dir, monkeypatch):
    """`deca-checkpoint` runs that CRC pass over every byte of a real-size checkpoint (read in place: the
    corrupt full-size download itself is not written again here, see the next test for the transfer)."""
    from decaenv.fetch import zipcheck
    from decaenv.fetch.manifest import Validator
    from decaenv.fetch.validators import validate

    path = procedural_data_dir / "deca_model.tar"
    checked = []
    real = zipcheck.verify_zip_crc
    monkeypatch.setattr(zipcheck, "verify_zip_crc", lambda p, *a, **k: checked.append((p, real(p, *a, **k))))
    validate(path, Validator("deca-checkpoint"))
    with zipfile.ZipFile(path) as zf:
        assert checked == [(str(path), sum(i.file_size for i in zf.infolist()))]


def test_flipped_byte_behind_a_valid_206_is_refused_and_not_pinned(loopback, tmp_path):
    """A zip of stored members with CRCs (like a torch checkpoint) whose last member has a byte flipped in the
    part that arrives after the connection drops and the download resumes with a correct 206."""
    good = _npz(flip=False, size=65536)
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        last = zf.infolist()[-1]
    bad = _flip_inside(good, last)
    assert last.header_offset > len(bad) // 3  # the flipped byte comes with the resumed part
    manifest = _npz_manifest(tmp_path, loopback)
    data = tmp_path / "data"
    loopback.routes["/x.npz"] = send_bytes(bad, drop_after=len(bad) // 3)
    (result,) = run_fetch(manifest, data)
    assert [r["headers"].get("Range") for r in loopback.seen] == [None, f"bytes={len(bad) // 3}-"]
    assert result.error is not None and result.error.code == "invalid-content"
    assert "CRC" in result.error.message and not (data / "x.npz").exists()
    # no first-use record of a corrupt file: a later good download is not refused as hash-mismatch
    assert not (data / ".decaenv" / "lockfile.json").exists()
    assert [p.name for p in data.iterdir() if ".part" in p.name] == []


def _npz(flip: bool, size: int = 4096) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key in ("a", "b"):
            arr = io.BytesIO()
            np.save(arr, np.arange(size, dtype=np.float32))
            zf.writestr(f"{key}.npy", arr.getvalue())
    raw = bytearray(buf.getvalue())
    if flip:
        raw[len(raw) // 4] ^= 0x10  # inside a.npy's data: headers and sizes stay right
    return bytes(raw)


def _npz_manifest(tmp_path: Path, loopback) -> Path:
    return write_manifest(
        tmp_path / "m.toml",
        [
            {
                "id": "x",
                "dest": "x.npz",
                "validate": {"kind": "npz-keys", "keys": ["a", "b"]},
                "sources": [{"kind": "https", "url": loopback.url("/x.npz")}],
            }
        ],
    )


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
    manifest = write_manifest(
        tmp_path / "m.toml",
        [{"id": "t", "dest": "t.obj", "sources": [{"kind": "https", "url": loopback.url("/t.obj")}]}],
    )
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

"""Content checks: sniffing, the structure-only reader and the validators, on real and synthetic files."""

from __future__ import annotations

import io
import pickle
import struct

import pytest

from decaenv.errors import DataError, IntegrityError, UnsafeContentError
from decaenv.fetch import structure
from decaenv.fetch.manifest import Validator, load_manifest
from decaenv.fetch.sniff import is_html, sniff
from decaenv.fetch.validators import image_size, validate


def _validator(entry_id):
    return load_manifest().get(entry_id).validator


@pytest.mark.parametrize(
    "head, kind",
    [
        (b"PK\x03\x04rest", "zip"),
        (b"\x93NUMPY\x01\x00", "npy"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"\x80\x02}q", "pickle"),
        (b"\x1f\x8b\x08", "gzip"),
        (b"\xef\xbb\xbf  <!DOCTYPE html><html>", "html"),
        (b"<HTML><head>", "html"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:", "lfs-pointer"),
        (b"", "empty"),
        (b"# Blender\nv 1 2 3\n", "text"),
        (b"\x00\x01\x02", "binary"),
    ],
)
def test_sniff(head, kind):
    assert sniff(head) == kind


def test_tar_sniffed():
    head = bytearray(512)
    head[257:262] = b"ustar"
    assert sniff(bytes(head)) == "tar"


def test_html_by_content_type():
    assert is_html(b"", "text/html; charset=utf-8") and not is_html(b"", "application/octet-stream")


def test_real_public_files_validate(shared_assets):
    deca = load_manifest()
    for entry in deca.entries:
        path = shared_assets / "deca-data" / entry.dest
        if path.exists():
            assert validate(path, entry.validator)


def test_real_landmarks_outline_without_torch(shared_assets):
    data = structure.outline_npy(shared_assets / "deca-data" / "landmark_embedding.npy")
    assert data["dynamic_lmk_faces_idx"].kind == "tensor" and data["dynamic_lmk_faces_idx"].shape == (79, 17)
    assert data["full_lmk_bary_coords"].shape == (1, 68, 3) and data["full_lmk_bary_coords"].dtype == "<f4"


def test_synthetic_assets_validate(procedural_data_dir):
    deca = load_manifest()
    for entry_id in (
        "landmark-embedding",
        "fixed-displacement",
        "mean-texture",
        "uv-face-eye-mask",
        "uv-face-mask",
        "texture-data",
        "deca-model",
        "flame",
    ):
        entry = deca.get(entry_id)
        assert validate(entry.path(procedural_data_dir), entry.validator)


def test_checkpoint_outline_is_fast_and_complete(procedural_data_dir):
    ckpt = structure.outline_torch(procedural_data_dir / "deca_model.tar")
    assert set(ckpt) == {"E_flame", "E_detail", "D_detail"}
    assert ckpt["E_flame"]["layers.2.weight"].shape == (236, 1024)
    assert ckpt["D_detail"]["l1.0.weight"].shape == (8192, 181)


def test_truncated_checkpoint_is_invalid(procedural_data_dir, tmp_path):
    bad = tmp_path / "deca_model.tar"
    with open(procedural_data_dir / "deca_model.tar", "rb") as src:
        bad.write_bytes(src.read(5_000_000))  # data.pkl and the first tensors whole, the rest cut off
    with pytest.raises(IntegrityError, match="deca_model.tar"):
        validate(bad, _validator("deca-model"))


def test_checkpoint_missing_network(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "deca_model.tar"
    torch.save({"E_flame": {"x": torch.zeros(2)}}, path)
    with pytest.raises(IntegrityError, match="checkpoint lacks E_detail, D_detail"):
        validate(path, _validator("deca-model"))


def test_legacy_torch_format(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "legacy.tar"
    torch.save({"a": torch.zeros(3, 4)}, path, _use_new_zipfile_serialization=False)
    assert structure.outline_torch(path)["a"].shape == (3, 4)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])
    with pytest.raises(DataError, match="truncated"):
        structure.outline_torch(path)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_outline_refuses_foreign_globals(tmp_path):
    path = tmp_path / "evil.npy"
    buf = io.BytesIO()
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }".ljust(117) + "\n"
    buf.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    buf.write(pickle.dumps(_Evil(), protocol=2))
    path.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeContentError, match="refers to (posix|os|nt).system"):
        structure.outline_npy(path)
    with pytest.raises(IntegrityError, match="refusing to load pickle global (posix|os|nt).system"):
        validate(path, _validator("texture-data"))  # the dense-template validator: decaenv's allowlisted unpickler


def test_npy_array_checks(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "fixed_displacement_256.npy"
    np.save(path, np.zeros((128, 256)))
    with pytest.raises(IntegrityError, match=r"shape \(128, 256\), expected \(256, 256\)"):
        validate(path, _validator("fixed-displacement"))
    np.save(path, np.zeros((256, 256)))
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(IntegrityError, match="header promises"):
        validate(path, _validator("fixed-displacement"))


def test_npz_keys(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "FLAME_albedo_from_BFM.npz"
    np.savez(path, MU=np.zeros(3), PC=np.zeros((3, 2)))
    assert validate(path, _validator("bfm-albedo")) == "MU (3,), PC (3, 2)"
    np.savez(path, mean=np.zeros(3))
    with pytest.raises(IntegrityError, match="lacks array\\(s\\) MU, PC"):
        validate(path, _validator("bfm-albedo"))


def test_image_sizes(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    png, jpg = tmp_path / "a.png", tmp_path / "b.jpg"
    pil.new("RGBA", (256, 128)).save(png)
    pil.new("RGB", (512, 512)).save(jpg, quality=90)
    assert image_size(str(png)) == ("png", 256, 128) and image_size(str(jpg)) == ("jpeg", 512, 512)
    with pytest.raises(IntegrityError, match="is 256×128, DECA expects 256×256"):
        validate(png, _validator("uv-face-mask"))
    with pytest.raises(IntegrityError, match="is a JPEG image, expected PNG"):
        validate(jpg, Validator("image", (("format", "png"),)))


def test_obj_counts(tmp_path):
    path = tmp_path / "head_template.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nvt 0 0\nf 1/1 2/1 1/1\n")
    with pytest.raises(IntegrityError, match="mesh has 2 v \\(expected 5023\\)"):
        validate(path, _validator("head-template"))


def test_html_refused_whatever_the_validator(tmp_path):
    path = tmp_path / "deca_model.tar"
    path.write_text("<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title></html>")
    with pytest.raises(IntegrityError, match="is an HTML page") as info:
        validate(path, _validator("deca-model"))
    assert info.value.code == "html-page"


def test_tar_named_checkpoint_refused(tmp_path):
    import tarfile

    inner = tmp_path / "x.txt"
    inner.write_text("x")
    path = tmp_path / "deca_model.tar"
    with tarfile.open(path, "w") as tf:
        tf.add(inner, arcname="x.txt")
    with pytest.raises(IntegrityError, match="is a tar archive, expected a zip archive or a Python pickle"):
        validate(path, _validator("deca-model"))


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "FLAME_texture.npz"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(IntegrityError, match="not a valid .npz"):
        validate(path, _validator("flame-texture"))


def test_flame_validator_uses_the_runtime_loader(procedural_data_dir, tmp_path):
    entry = load_manifest().get("flame")
    assert "5023 vertices, 9976 faces" in validate(entry.path(procedural_data_dir), entry.validator)
    broken = tmp_path / "generic_model.pkl"
    broken.write_bytes(pickle.dumps({"v_template": [[0.0, 0.0, 0.0]]}, protocol=2))
    with pytest.raises(IntegrityError, match="generic_model.pkl"):
        validate(broken, entry.validator)

"""`decaenv fetch --from`: files and archives the user already has, recognised by name and content."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import zipfile

import pytest

from decaenv.fetch import import_files
from decaenv.fetch.engine import FetchOptions
from decaenv.fetch.errors import error_code
from decaenv.fetch.importer import normalise_name
from decaenv.fetch.manifest import load_manifest


def _import(data_dir, *paths, manifest=None, **options):
    data_dir.mkdir(exist_ok=True)
    if manifest is not None:
        manifest = load_manifest(manifest)
    return import_files(data_dir, list(paths), options=FetchOptions(interactive=False, **options), manifest=manifest)


# Archive and name mechanics on the 7 MB mini FLAME (the packaged manifest minus its DECA-compatibility check):
# the full-size FLAME goes through the packaged manifest in test_folder_import.


def test_flame_zip_installs_generic_model(tmp_path, flame_zip, mechanics_manifest):
    archive, pkl = flame_zip
    src = tmp_path / "FLAME2020.zip"
    src.write_bytes(archive)
    (result,) = _import(tmp_path / "data", src, manifest=mechanics_manifest)
    assert result.action == "imported" and result.status.ok and result.status.hash_source == "first-use"
    assert (tmp_path / "data" / "generic_model.pkl").read_bytes() == pkl
    assert (tmp_path / "data" / "generic_model.npz").is_file()
    assert not (tmp_path / "data" / "FLAME2020").exists() and src.read_bytes() == archive  # user's file untouched
    (again,) = _import(tmp_path / "data", src, manifest=mechanics_manifest)
    assert again.action == "present"


def test_archive_recognised_by_content_under_any_name(tmp_path, mini_flame_zip, mechanics_manifest):
    src = tmp_path / "my-flame-download.zip"
    src.write_bytes(mini_flame_zip[0])
    (result,) = _import(tmp_path / "data", src, manifest=mechanics_manifest)
    assert result.entry.id == "flame" and result.status.ok


def test_plain_pickle_and_browser_duplicate_names(tmp_path, mini_flame_pickle, mechanics_manifest):
    src = tmp_path / "generic_model (1).pkl"
    shutil.copy(mini_flame_pickle[0], src)
    (result,) = _import(tmp_path / "data", src, manifest=mechanics_manifest)
    assert result.entry.id == "flame" and result.status.ok
    assert normalise_name("deca_model(2).tar") == "deca_model.tar" and normalise_name("x (1)") == "x"


def test_html_checkpoint_refused_with_the_drive_explanation(tmp_path):
    src = tmp_path / "deca_model.tar"
    src.write_text(
        "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
        "<p>Google Drive can't scan this file for viruses.</p></body></html>"
    )
    (result,) = _import(tmp_path / "data", src)
    err = result.error
    assert result.action == "failed" and error_code(err) == "html-page"
    assert "not DECA's checkpoint" in err.message and "Google Drive serves instead of the file" in err.message
    assert "about 414 MiB" in err.hint and "decaenv fetch --from" in err.hint
    assert not (tmp_path / "data" / "deca_model.tar").exists() and src.exists()


def test_html_saved_as_flame_zip(tmp_path):
    src = tmp_path / "FLAME2020.zip"
    src.write_text("<html><head><title>Login</title></head><input type=password name=password></html>")
    (result,) = _import(tmp_path / "data", src)
    assert error_code(result.error) == "html-login-rejected"


def _zip_with(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"/etc/passwd")
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def _symlink_info(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "evil, why",
    [
        ("../../evil.pkl", "climbs out of the target folder"),
        ("/tmp/evil.pkl", "is an absolute path"),
        ("FLAME2020/..\\..\\evil.pkl", "climbs out"),
        ("link", "is a symbolic link"),
    ],
)
def test_zip_slip_refused(tmp_path, flame_zip, evil, why):
    member = _symlink_info(evil) if evil == "link" else b"owned"
    src = tmp_path / "FLAME2020.zip"
    src.write_bytes(_zip_with([("FLAME2020/generic_model.pkl", flame_zip[1][:100]), (evil, member)]))
    (result,) = _import(tmp_path / "data", src)
    assert error_code(result.error) == "unsafe-archive" and why in result.error.message
    assert "nothing was extracted" in result.error.hint
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [".decaenv"]
    assert not (tmp_path / "evil.pkl").exists() and not os.path.exists("/tmp/evil.pkl")


def test_tar_with_link_refused(tmp_path):
    src = tmp_path / "TextureSpace.tar"
    with tarfile.open(src, "w") as tf:
        info = tarfile.TarInfo("FLAME_texture.npz")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    (result,) = _import(tmp_path / "data", src)
    assert error_code(result.error) == "unsafe-archive" and "is a link" in result.error.message


def test_folder_import(tmp_path, procedural_data_dir):
    """The full-size checkpoint and FLAME through the packaged manifest (a folder's files go one by one through
    the same `import_path` as a file named on the command line: this is also the checkpoint-file import)."""
    (results) = _import(tmp_path / "data", procedural_data_dir)
    by_id = {r.entry.id: r for r in results}
    assert by_id["flame"].status.ok and by_id["deca-model"].status.ok and by_id["texture-data"].status.ok
    assert by_id["deca-model"].action == "imported" and by_id["deca-model"].source.endswith("deca_model.tar")
    assert os.path.getsize(tmp_path / "data" / "deca_model.tar") == os.path.getsize(
        procedural_data_dir / "deca_model.tar"
    )
    # procedural public files are not DECA's: their pinned hashes refuse them, nothing is installed
    assert error_code(by_id["head-template"].error) in ("size-mismatch", "hash-mismatch")
    assert not (tmp_path / "data" / "head_template.obj").exists()


def test_real_public_files_import(tmp_path, shared_assets):
    results = _import(tmp_path / "data", shared_assets / "deca-data")
    assert len(results) == 6 and all(r.status.ok and r.status.hash_source == "manifest" for r in results)


def test_unknown_files(tmp_path):
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    (result,) = _import(tmp_path / "data", odd, tmp_path / "missing.zip")[:1]
    assert error_code(result.error) == "not-recognised" and "deca_model.tar" in result.error.hint


def test_tofu_record_protects_later_imports(tmp_path, procedural_data_dir):
    data = tmp_path / "data"
    _import(data, procedural_data_dir / "texture_data_256.npy")
    other = tmp_path / "other" / "texture_data_256.npy"
    other.parent.mkdir()
    raw = bytearray((procedural_data_dir / "texture_data_256.npy").read_bytes())
    raw[-1] ^= 1
    other.write_bytes(bytes(raw))
    (result,) = _import(data, other)
    assert error_code(result.error) == "hash-mismatch" and "first fetched" in result.error.message
    assert "decaenv fetch --forget texture-data" in result.error.hint
    assert (data / "texture_data_256.npy").read_bytes() == (procedural_data_dir / "texture_data_256.npy").read_bytes()

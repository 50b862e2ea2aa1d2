"""The shipped manifest says what the issue and DECA's repository say; bad manifests are refused by name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from decaenv.errors import DataError, UsageError
from decaenv.fetch import manifest as mf

COMMIT = "a11554ae2a2b0f3998cf1fa94dd4db03babb34a2"
PUBLIC = {  # name -> (size, sha256), from the shared SHA256SUMS and deca-spec §9.2
    "head_template.obj": (563358, "dd5bfbce75adb99b1963f43bca7ec3557bd4a7321f8fc515f4100599e80d99f2"),
    "landmark_embedding.npy": (31292, "8095348eeafce5a02f6bd8765146307f9567a3f03b316d788a2e47336d667954"),
    "fixed_displacement_256.npy": (524416, "296d01113d67bdaace6f6fe741f7d855e58dc0707f0bb113758520ffa5d8cb93"),
    "mean_texture.jpg": (53722, "34364c02dec9dfb30580d1575b375553c6cd8d5da5caa6ac5a611ce65b91f529"),
    "uv_face_eye_mask.png": (11522, "a5069d8ffaf020008ae92d5062c4e98600f723aac4eb869731f190e4630467b5"),
    "uv_face_mask.png": (12112, "bbf570444e3dddcdc54eaab7eeece97fe87d61cc3761e2c8b22ef495905e56fa"),
}


@pytest.fixture(scope="module")
def deca():
    return mf.load_manifest(mf.packaged_manifest())


def test_public_files_are_pinned_with_their_hashes(deca):
    for name, (size, sha) in PUBLIC.items():
        entry = next(e for e in deca.entries if e.dest == name)
        assert (entry.size, entry.sha256) == (size, sha)
        assert entry.default and entry.license.id == "deca"
        assert entry.sources[0].url == f"https://raw.githubusercontent.com/yfeng95/DECA/{COMMIT}/data/{name}"


def test_shared_sha256sums_agree(deca, shared_assets):
    for line in (shared_assets / "SHA256SUMS").read_text().splitlines():
        sha, name = line.split()
        assert next(e for e in deca.entries if e.dest == name).sha256 == sha


def test_texture_data_hash_is_unknown(deca):
    entry = deca.get("texture-data")
    assert entry.sha256 is None and entry.size is None and entry.default
    assert entry.validator.kind == "dense-template" and entry.validator.param("vertices") == 5023


def test_checkpoint_sources(deca):
    entry = deca.get("deca-model")
    assert entry.dest == "deca_model.tar" and entry.validator.kind == "deca-checkpoint"
    gdrive = entry.sources[0]
    assert gdrive.kind == "gdrive" and gdrive.drive_id == "1rp8kdyLPvErw2dTmqtjISRVvQLj6Yzje"
    assert gdrive.download_url.startswith("https://drive.google.com/uc?") and gdrive.drive_id in gdrive.download_url
    baidu = [s for s in entry.manual_sources() if "baidu" in (s.url or "")]
    assert [(s.url, s.code) for s in baidu] == [("https://pan.baidu.com/s/1vlc6cYfeZ2-WEXqNkcMr0A", "7fgl")]
    assert "7fgl" in entry.manual_text()


def test_flame_sources(deca):
    entry = deca.get("flame")
    assert entry.dest == "generic_model.pkl" and entry.license.account and entry.post == ("flame-npz",)
    post = entry.sources[0]
    assert post.kind == "form-post" and post.archive == "FLAME2020.zip" and post.member == "generic_model.pkl"
    assert post.url == "https://download.is.tue.mpg.de/download.php?domain=flame&sfile=FLAME2020.zip&resume=1"
    assert (post.field("username"), post.field("password")) == ("username", "password")
    assert deca.credentials[post.credentials].password_env == "DECAENV_FLAME_PASSWORD"
    codes = {s.url: s.code for s in entry.manual_sources() if s.code}
    assert codes == {"https://pan.baidu.com/s/1ejoL6dezMNoj_vPX4Dd-nA": "ngw8"}


def test_optional_texture_files(deca):
    tex = deca.get("flame-texture")
    assert not tex.default and tex.dest == "FLAME_texture.npz"
    assert tex.sources[0].url.endswith("sfile=TextureSpace.zip&resume=1") and tex.sources[0].member == "FLAME_texture.npz"
    assert any(s.code == "yv65" for s in tex.sources)
    bfm = deca.get("bfm-albedo")
    assert bfm.manual_only and "BFM_to_FLAME" in bfm.manual_text() and not bfm.default


def test_defaults_are_what_reconstruction_reads(deca):
    assert {e.dest for e in deca.defaults()} == set(PUBLIC) | {"texture_data_256.npy", "deca_model.tar",
                                                                "generic_model.pkl"}


def test_select_and_unknown_id(deca):
    assert [e.id for e in deca.select(["flame", "head-template"])] == ["head-template", "flame"]
    assert len(deca.select(everything=True)) == len(deca.entries)
    with pytest.raises(UsageError, match="unknown file id 'nope'") as info:
        deca.get("nope")
    assert info.value.hint.startswith("known ids: head-template, ")


def test_env_override(tmp_path, monkeypatch, deca):
    copy = tmp_path / "m.toml"
    shutil.copy(mf.packaged_manifest(), copy)
    monkeypatch.setenv(mf.ENV_MANIFEST, str(copy))
    assert mf.manifest_path() == copy
    assert mf.load_manifest().origin == str(copy)


def test_found_when_installed_as_a_wheel(tmp_path, monkeypatch):
    """In a wheel the manifest sits at decaenv/manifests/deca.toml (pyproject force-include)."""
    pkg = tmp_path / "site" / "decaenv"
    (pkg / "fetch").mkdir(parents=True)
    (pkg / "manifests").mkdir()
    shutil.copy(mf.packaged_manifest(), pkg / "manifests" / "deca.toml")
    monkeypatch.setattr(mf, "__file__", str(pkg / "fetch" / "manifest.py"))
    assert mf.packaged_manifest() == (pkg / "manifests" / "deca.toml").resolve()
    os.remove(pkg / "manifests" / "deca.toml")
    with pytest.raises(DataError, match="manifest .* is missing"):
        mf.packaged_manifest()


def test_pyproject_ships_the_manifest():
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"manifests" = "decaenv/manifests"' in text


@pytest.mark.parametrize("bad, message", [
    ('schema = 2\n', "schema 2 is not supported"),
    ('schema = 1\nnonsense = 1\n', "unknown field"),
    ('schema = 1\n[[file]]\nid = "x"\ndest = "x"\nlicense = "l"\n', "license 'l' is not defined"),
    ('schema = 1\n[licenses.l]\nname="n"\nurl="u"\n[[file]]\nid = "x"\ndest = "../x"\nlicense = "l"\n'
     '[[file.source]]\nkind="https"\nurl="https://a/b"\n', "must be a relative path"),
    ('schema = 1\n[licenses.l]\nname="n"\nurl="u"\n[[file]]\nid = "x"\ndest = "x"\nlicense = "l"\nsha256 = "abc"\n'
     '[[file.source]]\nkind="https"\nurl="https://a/b"\n', "sha256 must be 64 hex"),
    ('schema = 1\n[licenses.l]\nname="n"\nurl="u"\n[[file]]\nid = "x"\ndest = "x"\nlicense = "l"\n'
     '[[file.source]]\nkind="ftp"\nurl="ftp://a/b"\n', "kind 'ftp' is not one of"),
    ('schema = 1\n[licenses.l]\nname="n"\nurl="u"\n[[file]]\nid = "x"\ndest = "x"\nlicense = "l"\n'
     '[[file.source]]\nkind="https"\nurl="https://a/b"\narchive="a.zip"\n', "archive and member go together"),
    ('schema = 1\n[licenses.l]\nname="n"\nurl="u"\n[[file]]\nid = "x"\ndest = "x"\nlicense = "l"\n'
     '[[file.source]]\nkind="form-post"\nurl="https://a/b"\ncredentials="c"\n', "credentials 'c' are not defined"),
    ('schema = [\n', "not valid TOML"),
])
def test_bad_manifests_are_refused_by_name(bad, message):
    with pytest.raises(DataError, match=message):
        mf.parse_manifest(bad, origin="bad.toml")


def test_duplicate_ids_refused():
    one = ('[[file]]\nid = "x"\ndest = "{d}"\nlicense = "l"\n[[file.source]]\nkind="https"\nurl="https://a/b"\n')
    text = 'schema = 1\n[licenses.l]\nname="n"\nurl="u"\n' + one.format(d="a") + one.format(d="b")
    with pytest.raises(DataError, match="duplicate id 'x'"):
        mf.parse_manifest(text)

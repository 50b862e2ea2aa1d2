"""Checks of the `data` category: the data dir, FLAME, deca_model.tar (bytes and weights), other files."""

import collections
import io
import tarfile

import pytest

from decaenv.doctor import subsystems
from decaenv.doctor.checks import data
from decaenv.doctor.model import Status
from decaenv.doctor.testing import FakeProbe, make_context


def _ctx(data_dir, sections=None):
    return make_context(FakeProbe(sections=sections or {}), data_dir=data_dir)


def test_data_dir_ok_missing_readonly_and_full(tmp_path, monkeypatch):
    assert data.check_data_dir(_ctx(tmp_path)).status is Status.OK
    missing = data.check_data_dir(_ctx(tmp_path / "not" / "yet"))
    assert missing.status is Status.OK and "does not exist yet" in missing.summary
    usage = collections.namedtuple("U", "total used free")(1, 1, 10**8)
    monkeypatch.setattr(data.shutil, "disk_usage", lambda p: usage)
    full = data.check_data_dir(_ctx(tmp_path))
    assert full.status is Status.FAIL and "GB free" in full.summary
    monkeypatch.setattr(data.os, "access", lambda p, mode: False)
    assert "not writable" in data.check_data_dir(_ctx(tmp_path)).summary


FLAME_OK = {
    "file": "",
    "loaded": True,
    "kind": "generic",
    "vertices": 5023,
    "faces": 9976,
    "components": 400,
    "joints": 5,
    "incompatible": [],
    "seconds": 0.3,
}


def test_flame_missing_and_renamed(tmp_path):
    missing = data.check_flame(_ctx(tmp_path))
    assert missing.status is Status.FAIL and "no FLAME model" in missing.summary
    assert missing.remediation.commands == (
        "decaenv fetch flame --username YOUR_FLAME_LOGIN",
        "decaenv fetch --from ~/Downloads/FLAME2020.zip",
    )
    (tmp_path / "FLAME2020").mkdir()
    (tmp_path / "FLAME2020" / "generic_model.pkl").write_bytes(b"x")
    nested = data.check_flame(_ctx(tmp_path))
    assert nested.status is Status.FAIL and "FLAME2020/generic_model.pkl" in nested.summary
    assert nested.remediation.commands[0].startswith("cp ")


def test_flame_other_variant_is_not_copied(tmp_path):
    (tmp_path / "female_model.pkl").write_bytes(b"x")
    result = data.check_flame(_ctx(tmp_path))
    assert result.status is Status.FAIL and "not what DECA's checkpoint was trained with" in result.summary
    assert not any(c.startswith("cp ") for c in result.remediation.commands)


def test_flame_loaded_variants(tmp_path):
    (tmp_path / "generic_model.pkl").write_bytes(b"x")
    pkl = str(tmp_path / "generic_model.pkl")
    ok = data.check_flame(_ctx(tmp_path, {"flame-load": dict(FLAME_OK, file=pkl)}))
    assert ok.status is Status.OK and "5023 v" in ok.summary
    assert ok.fixes[0].kind == "convert-flame" and ok.fixes[0].args["dst"].endswith("generic_model.npz")
    err = {
        "file": pkl,
        "loaded": False,
        "error": {
            "type": "DataError",
            "message": "generic_model.pkl is an HTML page",
            "hint": "delete it and download it again",
        },
    }
    bad = data.check_flame(_ctx(tmp_path, {"flame-load": err}))
    assert bad.status is Status.FAIL and "HTML page" in bad.summary and "download it again" in bad.remediation.text
    v2023 = dict(FLAME_OK, file=pkl, kind="flame2023", incompatible=["FLAME 2023 differs from FLAME 2020"])
    assert data.check_flame(_ctx(tmp_path, {"flame-load": v2023})).status is Status.FAIL
    female = data.check_flame(_ctx(tmp_path, {"flame-load": dict(FLAME_OK, file=pkl, kind="female")}))
    assert female.status is Status.WARN
    stale = data.check_flame(_ctx(tmp_path, {"flame-load": dict(FLAME_OK, file=pkl, npz_matches_pickle=False)}))
    assert stale.status is Status.WARN and stale.fixes[0].kind == "convert-flame"


def _torch():
    return pytest.importorskip("torch")


def _write(path, content):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "content, kind",
    [
        (b"", "empty"),
        (
            b"<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title>"
            b"Too many users have viewed or downloaded this file recently.</html>",
            "html",
        ),
        (b"  <html><body>Google Drive can't scan this file for viruses</body></html>", "html"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 434\n", "lfs-pointer"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 100, "gzip"),
        (b"random bytes that are nothing", "unknown"),
    ],
)
def test_classify_checkpoint_bytes(tmp_path, content, kind):
    assert data.classify_checkpoint(_write(tmp_path / "deca_model.tar", content))[0] == kind


def test_classify_torch_formats_tar_and_truncation(tmp_path):
    torch = _torch()
    zipped = tmp_path / "zip.tar"
    torch.save({"E_flame": {"w": torch.zeros(3)}}, zipped)
    assert data.classify_checkpoint(zipped)[0] == "zip"
    legacy = tmp_path / "legacy.tar"
    torch.save({"E_flame": {"w": torch.zeros(3)}}, legacy, _use_new_zipfile_serialization=False)
    assert data.classify_checkpoint(legacy)[0] == "legacy"
    cut = _write(tmp_path / "cut.tar", zipped.read_bytes()[:-200])
    assert data.classify_checkpoint(cut)[0] == "truncated"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        info = tarfile.TarInfo("deca_model.pth")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    assert data.classify_checkpoint(_write(tmp_path / "t.tar", buf.getvalue()))[0] == "tar"


def test_deca_model_check(tmp_path):
    missing = data.check_deca_model(_ctx(tmp_path))
    assert missing.status is Status.FAIL and missing.fixes[0].args["ids"] == ["deca-model"]
    _write(tmp_path / "deca_model.tar", b"<!DOCTYPE html><html>Too many users have viewed or downloaded this file")
    html = data.check_deca_model(_ctx(tmp_path))
    assert html.status is Status.FAIL and "Google Drive quota page" in html.summary
    assert "do not untar" in html.remediation.text
    torch = _torch()
    torch.save({"E_flame": {}}, tmp_path / "deca_model.tar")
    small = data.check_deca_model(_ctx(tmp_path))
    assert small.status is Status.OK and "smaller than the released file" in small.details[0]


def _net(**over):
    base = {
        "present": True,
        "keys": 322,
        "expected": 322,
        "missing": [],
        "missing_count": 0,
        "unexpected": [],
        "unexpected_count": 0,
        "wrong_shapes": [],
        "wrong_count": 0,
        "non_tensor": [],
        "module_prefix": False,
    }
    base.update(over)
    return base


def _load(**networks):
    nets = {"E_flame": _net(), "E_detail": _net(), "D_detail": _net(keys=44, expected=44)}
    nets.update(networks)
    return {"checkpoint-load": {"loaded": True, "seconds": 0.2, "top_keys": list(nets), "networks": nets}}


def test_deca_model_load(tmp_path):
    ok = data.check_deca_model_load(_ctx(tmp_path, _load()))
    assert ok.status is Status.OK and "match DECA's keys and shapes" in ok.summary
    gone = data.check_deca_model_load(_ctx(tmp_path, _load(E_detail={"present": False})))
    assert gone.status is Status.FAIL and "E_detail is missing" in gone.summary
    shapes = data.check_deca_model_load(
        _ctx(
            tmp_path,
            _load(E_flame=_net(wrong_count=2, wrong_shapes=["layers.2.weight (300, 1024) (expected (236, 1024))"])),
        )
    )
    assert shapes.status is Status.FAIL and "2 wrong-shape" in shapes.summary
    prefixed = data.check_deca_model_load(_ctx(tmp_path, _load(D_detail=_net(module_prefix=True))))
    assert "module." in prefixed.summary
    failed = data.check_deca_model_load(
        _ctx(
            tmp_path,
            {
                "checkpoint-load": {
                    "loaded": False,
                    "error": {"type": "UnpicklingError", "message": "Weights only load failed"},
                }
            },
        )
    )
    assert failed.status is Status.FAIL and "Weights only load failed" in failed.summary
    odd = data.check_deca_model_load(_ctx(tmp_path, {"checkpoint-load": {"loaded": True, "top_type": "list"}}))
    assert odd.status is Status.FAIL


def test_data_files_uses_the_fetch_verification(tmp_path, monkeypatch):
    def status(files):
        monkeypatch.setattr(subsystems, "manifest_status", lambda d, **kw: {"files": files})
        return data.check_data_files(_ctx(tmp_path))

    def row(i, s, required=True, kind="https"):
        return {
            "id": i,
            "dest": f"{i}.obj",
            "status": s,
            "detail": "",
            "kind": kind,
            "required": required,
        }

    good = status(
        [
            row("head-template", "verified"),
            row("albedo", "missing", required=False, kind="manual"),
            {**row("flame", "missing", kind="manual"), "dest": "generic_model.pkl"},
        ]
    )
    assert good.status is Status.OK and "optional, not present: albedo.obj" in good.summary
    bad = status([row("head-template", "hash-mismatch"), row("mask", "missing")])
    assert bad.status is Status.FAIL and bad.fixes[0].args["ids"] == ["head-template", "mask"]
    assert status([row("x", "hash-unknown")]).status is Status.WARN


def test_data_files_with_a_broken_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(
        subsystems, "manifest_status", lambda d, **kw: {"error": "manifest x.toml: line 3: bad key", "files": []}
    )
    result = data.check_data_files(_ctx(tmp_path))
    assert result.status is Status.FAIL and "bad key" in result.summary


def test_manifest_status_through_the_real_fetch_package(tmp_path):
    status = subsystems.manifest_status(str(tmp_path))
    by_dest = {f["dest"]: f for f in status["files"]}
    assert by_dest["head_template.obj"]["status"] == "missing" and by_dest["head_template.obj"]["required"]
    assert by_dest["generic_model.pkl"]["kind"] in ("form-post", "manual")


def test_flame_and_head_template_topology_compared(tmp_path, procedural_data_dir):
    """The real probe section: the synthetic FLAME matches its own head_template.obj; a template from another
    topology (here: the same triangles in another order, as a FLAME/obj from different sources would be) fails."""
    from _support.assets import link_or_copy

    from decaenv.doctor.probes_data import flame_load_section

    link_or_copy(procedural_data_dir / "generic_model.pkl", tmp_path / "generic_model.pkl")  # only read
    assert flame_load_section({"data_dir": str(tmp_path)})["template_faces"] is None  # no obj: not judged
    lines = (procedural_data_dir / "head_template.obj").read_text().splitlines()
    (tmp_path / "head_template.obj").write_text("\n".join(lines) + "\n")
    same = flame_load_section({"data_dir": str(tmp_path)})
    assert same["template_faces"] is True
    assert data.check_flame(_ctx(tmp_path, {"flame-load": same})).status is Status.OK

    faces = [line for line in lines if line.startswith("f ")]
    others = [line for line in lines if not line.startswith("f ")]
    (tmp_path / "head_template.obj").write_text("\n".join(others + faces[1:] + faces[:1]) + "\n")
    moved = flame_load_section({"data_dir": str(tmp_path)})
    assert moved["template_faces"] is False
    result = data.check_flame(_ctx(tmp_path, {"flame-load": moved}))
    assert result.status is Status.FAIL and "different triangles" in result.summary
    assert "--topology-from" in result.remediation.text

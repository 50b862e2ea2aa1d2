"""`decaenv fetch` end to end: exit codes, one-line errors, --list/--verify/--json/--offline, licences."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from _support.fetch_server import Payload, sha, write_manifest

from decaenv.cli import main

pytestmark = pytest.mark.slow  # decaenv CLI subprocesses: `make test` only, not `make test-fast`


def _cli(*args, env=None, stdin=None, timeout=120):
    full = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "decaenv", *args], capture_output=True, text=True, env=full, input=stdin, timeout=timeout
    )


def test_list_needs_an_existing_data_dir(capsys):
    code = main(["--data-dir", "/nonexistent", "fetch", "--list"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("decaenv: error: data dir /nonexistent (from --data-dir) does not exist")


def test_verify_needs_an_existing_data_dir(capsys):
    assert main(["--data-dir", "/nonexistent/x", "fetch", "--verify"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_download_needs_the_parent(capsys, tmp_path):
    code = main(["--data-dir", str(tmp_path / "a" / "b"), "fetch", "--offline"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot create data dir" in err and err.count("\n") == 1


def test_list_json(tmp_path, capsys, shared_assets):
    data = tmp_path / "data"
    data.mkdir()
    assert main(["--data-dir", str(shared_assets / "deca-data"), "fetch", "--list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1 and doc["command"] == "list" and doc["manifest"]["name"] == "deca"
    files = {f["id"]: f for f in doc["files"]}
    assert files["head-template"]["status"] == "verified" and files["deca-model"]["status"] == "missing"
    assert files["texture-data"]["expected_sha256"] is None
    assert files["flame"]["license"]["account"] is True
    assert {
        "kind": "manual",
        "url": "https://pan.baidu.com/s/1vlc6cYfeZ2-WEXqNkcMr0A",
        "archive": None,
        "member": None,
        "code": "7fgl",
        "note": "Baidu Pan mirror (for users in China)",
    } in files["deca-model"]["sources"]


def test_list_table_and_bad_flags(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    assert main(["--data-dir", str(data), "fetch", "--list"]) == 0
    out = capsys.readouterr().out
    for word in ("head-template", "missing", "deca-model", "gdrive", "form-post", "licence flame:"):
        assert word in out
    assert main(["--data-dir", str(data), "fetch", "--list", "--force"]) == 1
    assert "--list only reads the data dir" in capsys.readouterr().err
    assert main(["--data-dir", str(data), "fetch", "--list", "--verify"]) == 1
    assert main(["--data-dir", str(data), "fetch", "nope"]) == 1
    assert "unknown file id 'nope'" in capsys.readouterr().err


def test_offline_prints_what_to_download_by_hand(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    run = _cli("--data-dir", str(data), "fetch", "--offline")
    assert run.returncode == 1
    assert "decaenv: error: deca-model: deca_model.tar is missing and --offline forbids downloading it" in run.stderr
    assert "download by hand, then run `decaenv fetch --from <file> [<file>...]`:" in run.stderr
    assert "https://pan.baidu.com/s/1vlc6cYfeZ2-WEXqNkcMr0A (extraction code 7fgl)" in run.stderr
    assert "FLAME2020.zip (holds generic_model.pkl)" in run.stderr
    assert (
        "raw.githubusercontent.com/yfeng95/DECA/a11554ae2a2b0f3998cf1fa94dd4db03babb34a2/data/head_template.obj"
        in run.stderr
    )
    assert "Traceback" not in run.stderr


def test_json_fetch_document(tmp_path, server):
    data_bytes = os.urandom(10_000)
    server.files["a.bin"] = Payload(data_bytes)
    manifest = write_manifest(
        tmp_path / "m.toml",
        [
            {
                "id": "a",
                "dest": "a.bin",
                "sha256": sha(data_bytes),
                "size": len(data_bytes),
                "sources": [{"kind": "https", "url": server.url("a.bin")}],
            },
            {
                "id": "b",
                "dest": "b.bin",
                "sources": [{"kind": "manual", "url": "https://example.org/b", "code": "c0de"}],
            },
        ],
    )
    data = tmp_path / "data"
    data.mkdir()
    run = _cli(
        "--data-dir",
        str(data),
        "fetch",
        "--json",
        "--accept-license",
        "a",
        "b",
        env={"DECAENV_MANIFEST": str(manifest)},
    )
    assert run.returncode == 1
    doc = json.loads(run.stdout)
    assert doc["ok"] is False and doc["command"] == "fetch"
    a, b = doc["files"]
    assert (a["action"], a["status"], a["error"], a["bytes"]) == ("downloaded", "verified", None, 10_000)
    assert a["license"]["accepted"]
    assert b["action"] == "failed" and b["error"]["code"] == "manual-only" and "c0de" in b["error"]["hint"]
    assert run.stderr == ""  # --json: nothing but the document


def test_licence_must_be_accepted(tmp_path, server):
    server.files["a.bin"] = Payload(b"abc")
    manifest = write_manifest(
        tmp_path / "m.toml", [{"id": "a", "dest": "a.bin", "sources": [{"kind": "https", "url": server.url("a.bin")}]}]
    )
    data = tmp_path / "data"
    data.mkdir()
    env = {"DECAENV_MANIFEST": str(manifest)}
    run = _cli("--data-dir", str(data), "fetch", env=env)
    assert run.returncode == 1 and server.log == []
    assert "a.bin is under the Test licence: https://example.org/licence — read it" in run.stderr
    assert "--accept-license" in run.stderr
    run = _cli("--data-dir", str(data), "fetch", "--accept-license", env=env)
    assert run.returncode == 0 and (data / "a.bin").read_bytes() == b"abc"
    record = json.loads((data / ".decaenv" / "licenses.json").read_text())["accepted"]["test"]
    assert record["url"] == "https://example.org/licence" and record["how"] == "--accept-license"
    os.remove(data / "a.bin")
    assert _cli("--data-dir", str(data), "fetch", env=env).returncode == 0  # accepted once is enough


def test_licence_prompt(tmp_path, server, monkeypatch):
    from decaenv.fetch.engine import Fetcher, FetchOptions
    from decaenv.fetch.manifest import load_manifest

    server.files["a.bin"] = Payload(b"abc")
    man = load_manifest(
        write_manifest(
            tmp_path / "m.toml",
            [{"id": "a", "dest": "a.bin", "sources": [{"kind": "https", "url": server.url("a.bin")}]}],
        )
    )
    asked = []
    no = Fetcher(man, tmp_path, FetchOptions(interactive=True, confirm_license=lambda lic, e: asked.append(lic.url)))
    assert no.fetch(man.entries)[0].error.code == "license-not-accepted"
    yes = Fetcher(man, tmp_path, FetchOptions(interactive=True, confirm_license=lambda lic, e: True))
    assert yes.fetch(man.entries)[0].ok and asked == ["https://example.org/licence"]


def test_verify_reports_and_exits_1_on_a_bad_file(tmp_path, shared_assets):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("head_template.obj", "mean_texture.jpg"):
        (data / name).write_bytes((shared_assets / "deca-data" / name).read_bytes())
    run = _cli("--data-dir", str(data), "fetch", "--verify", "head-template", "mean-texture")
    assert run.returncode == 0 and "5023 v / 5118 vt / 9976 f" in run.stdout
    with open(data / "mean_texture.jpg", "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01")
    run = _cli("--data-dir", str(data), "fetch", "--verify", "head-template", "mean-texture", "--json")
    doc = json.loads(run.stdout)
    assert run.returncode == 1 and [f["status"] for f in doc["files"]] == ["verified", "hash-mismatch"]


def test_from_with_more_paths_after_it(tmp_path, procedural_data_dir, mini_flame_zip, mechanics_manifest):
    src = tmp_path / "FLAME2020.zip"
    src.write_bytes(mini_flame_zip[0])
    data = tmp_path / "data"
    data.mkdir()
    run = _cli(
        "--data-dir",
        str(data),
        "fetch",
        "--from",
        str(src),
        str(procedural_data_dir / "texture_data_256.npy"),
        env={"DECAENV_MANIFEST": str(mechanics_manifest)},
    )
    assert run.returncode == 0, run.stderr
    assert "[ok]   flame" in run.stdout and "[ok]   texture-data" in run.stdout
    assert (data / "generic_model.pkl").exists() and (data / "texture_data_256.npy").exists()


def test_found_but_unrecorded_file_is_adopted(tmp_path, procedural_data_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "texture_data_256.npy").write_bytes((procedural_data_dir / "texture_data_256.npy").read_bytes())
    run = _cli("--data-dir", str(data), "-v", "fetch", "texture-data", "--offline")
    assert run.returncode == 0 and "trusted on first use" in run.stdout
    record = json.loads((data / ".decaenv" / "lockfile.json").read_text())["files"]["texture-data"]
    assert record["trust"] == "first-use" and len(record["sha256"]) == 64


def _small_torch_file() -> bytes:
    """A `torch.save`d state dict (zip format, like deca_model.tar) of 3 small tensors."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(
        {"conv.weight": torch.ones(8, 3, 3, 3), "conv.bias": torch.zeros(8), "fc.weight": torch.ones(4, 8)}, buffer
    )
    return buffer.getvalue()


def test_existing_html_checkpoint_is_replaced_and_kept_aside(tmp_path, server):
    """DECA's fetch_data.sh leaves Drive's HTML page as data/deca_model.tar (FM31): fetch replaces it.

    The download is a small torch file validated as a state dict (the same sniffed kinds as `deca-checkpoint`):
    what is tested is the replacement of the invalid file already at `dest`, whatever its validator; the
    full-size checkpoint through Drive and `deca-checkpoint` is test_gdrive's end-to-end test."""
    ckpt = _small_torch_file()
    server.drive["ID"] = Payload(ckpt)
    manifest = write_manifest(
        tmp_path / "m.toml",
        [
            {
                "id": "deca-model",
                "dest": "deca_model.tar",
                "validate": {"kind": "torch-state-dict", "tensors": 3, "shapes": [["conv.weight", [8, 3, 3, 3]]]},
                "sources": [{"kind": "gdrive", "id": "ID", "url": server.base + "/uc?export=download&id={id}"}],
            }
        ],
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "deca_model.tar").write_text("<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title>")
    run = _cli("--data-dir", str(data), "-v", "fetch", "--accept-license", env={"DECAENV_MANIFEST": str(manifest)})
    assert run.returncode == 0, run.stderr
    assert (data / "deca_model.tar").read_bytes() == ckpt
    (kept,) = (data / ".decaenv" / "kept").iterdir()  # the previous file is kept, never deleted
    assert kept.read_text().startswith("<!DOCTYPE html>")

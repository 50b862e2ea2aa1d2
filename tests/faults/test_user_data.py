"""Never overwrite or leak a user's data: files moved aside, symlinks, private state, capped quarantine,
login answers, ~/.netrc."""

from __future__ import annotations

import io
import json
import os
import stat
import time
import zipfile
from pathlib import Path

from _support.faults import echo_login, run_fetch, send_bytes, write_manifest

from decaenv.cli import main


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _flame_manifest(tmp_path: Path, url: str = "https://example.org/none", kind: str = "https") -> Path:
    source = {"kind": kind, "url": url, "archive": "FLAME2020.zip", "member": "FLAME2020/generic_model.pkl"}
    if kind == "form-post":
        source.update(credentials="flame", fields={"username": "username", "password": "password"})
    return write_manifest(
        tmp_path / "m.toml",
        [
            {
                "id": "flame",
                "dest": "generic_model.pkl",
                "validate": {"kind": "flame-model", "deca": False},
                "post": ["flame-npz"],
                "approx_size": 53000000,
                "sources": [source],
            }
        ],
    )


def test_import_never_overwrites_the_users_own_npz(tmp_path, mini_flame_pickle):
    pkl = mini_flame_pickle[0].read_bytes()
    archive = tmp_path / "FLAME2020.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("FLAME2020/generic_model.pkl", pkl)
    data = tmp_path / "data"
    data.mkdir()
    mine = b"my own converted FLAME, not decaenv's"
    (data / "generic_model.npz").write_bytes(mine)
    (result,) = run_fetch(_flame_manifest(tmp_path), data, importing=[archive])
    assert result.ok, result.error
    kept = [n for n in result.notes if "your previous generic_model.npz" in n]
    assert kept, result.notes
    (aside,) = (data / ".decaenv" / "kept").iterdir()
    assert aside.read_bytes() == mine and str(aside) in kept[0]
    assert (data / "generic_model.npz").read_bytes() != mine  # decaenv's conversion is in place


def test_users_file_at_a_destination_is_kept_on_force(loopback, tmp_path):
    loopback.routes["/t.obj"] = send_bytes(b"v 0 0 0\n")
    manifest = write_manifest(
        tmp_path / "m.toml",
        [{"id": "t", "dest": "t.obj", "sources": [{"kind": "https", "url": loopback.url("/t.obj")}]}],
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.obj").write_bytes(b"v 9 9 9\n# my edits\n")
    from decaenv.fetch.engine import Fetcher, FetchOptions
    from decaenv.fetch.http import HttpOptions
    from decaenv.fetch.manifest import load_manifest

    man = load_manifest(manifest)
    opts = FetchOptions(force=True, accept_license=True, interactive=False, http=HttpOptions(sleep=lambda s: None))
    (result,) = Fetcher(man, data, opts).fetch(man.entries)
    assert result.ok and (data / "t.obj").read_bytes() == b"v 0 0 0\n"
    (aside,) = (data / ".decaenv" / "kept").iterdir()
    assert aside.read_bytes() == b"v 9 9 9\n# my edits\n" and any(str(aside) in n for n in result.notes)


def test_symlink_out_of_an_imported_folder_is_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$hash:19000::::::\n")
    os.chmod(secret, 0o600)
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "head_template.obj").symlink_to(secret)
    manifest = write_manifest(
        tmp_path / "m.toml",
        [{"id": "head", "dest": "head_template.obj", "sources": [{"kind": "https", "url": "https://example.org/h"}]}],
    )
    data = tmp_path / "data"
    (result,) = run_fetch(manifest, data, importing=[folder])
    assert result.error is not None and result.error.code == "symlink-outside"
    copies = [p for p in data.rglob("*") if p.is_file() and b"root:$6$" in p.read_bytes()]
    assert copies == []


def test_state_and_quarantine_are_private(loopback, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "umask", os.umask)  # the test's umask is whatever the caller has
    old = os.umask(0o022)
    try:
        loopback.routes["/t.obj"] = send_bytes(b"not the right bytes\n")
        manifest = write_manifest(
            tmp_path / "m.toml",
            [
                {"id": "t", "dest": "t.obj", "size": 8, "sources": [{"kind": "https", "url": loopback.url("/t.obj")}]},
                {"id": "u", "dest": "u.obj", "sources": [{"kind": "https", "url": loopback.url("/u.obj")}]},
            ],
        )
        loopback.routes["/u.obj"] = send_bytes(b"v 1 2 3\n")
        data = tmp_path / "data"
        bad, good = run_fetch(manifest, data)
        assert bad.error is not None and bad.error.quarantined and good.ok
        state = data / ".decaenv"
        assert _mode(state) == 0o700 and _mode(state / "quarantine") == 0o700
        assert _mode(Path(bad.error.quarantined)) == 0o600
        assert _mode(state / "lockfile.json") == 0o600 and _mode(state / "licenses.json") == 0o600
        assert _mode(data / "u.obj") == 0o644  # installed files keep the usual permissions
    finally:
        os.umask(old)


def test_quarantine_is_capped_and_cleaned(tmp_path, monkeypatch, capsys):
    from decaenv.fetch.store import Store

    store = Store(tmp_path / "data")
    store.ensure()
    monkeypatch.setenv("DECAENV_QUARANTINE_MAX_MB", "0.003")  # 3,000 bytes
    old = store.quarantine_bytes(b"o" * 1000, "old.bin", "hash-mismatch")
    os.utime(old, (time.time() - 40 * 86400,) * 2)  # past the 30-day age cap
    first = store.quarantine_bytes(b"a" * 1500, "a.bin", "hash-mismatch")
    os.utime(first, (time.time() - 60,) * 2)
    second = store.quarantine_bytes(b"b" * 1500, "b.bin", "hash-mismatch")
    third = store.quarantine_bytes(b"c" * 1500, "c.bin", "hash-mismatch")
    left = store.quarantine_entries()
    assert not old.exists() and not first.exists() and third in left and second in left
    assert sum(p.stat().st_size for p in left) <= 3000
    assert main(["--data-dir", str(store.root), "fetch", "--clean"]) == 0
    assert "removed 2 refused payload(s)" in capsys.readouterr().out and store.quarantine_entries() == []


def test_login_page_echoing_the_password_is_not_stored(loopback, tmp_path, monkeypatch):
    password = "hunter2-very-secret"
    monkeypatch.setenv("DECAENV_FLAME_USERNAME", "ada")
    monkeypatch.setenv("DECAENV_FLAME_PASSWORD", password)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    loopback.routes["/download.php"] = echo_login
    data = tmp_path / "data"
    (result,) = run_fetch(_flame_manifest(tmp_path, loopback.url("/download.php"), "form-post"), data)
    assert result.error is not None and result.error.code == "html-login-rejected"
    assert password not in result.error.one_line()
    stored = [p for p in data.rglob("*") if p.is_file()]
    assert stored and not any(password.encode() in p.read_bytes() for p in stored)
    (record,) = (data / ".decaenv" / "quarantine").iterdir()
    assert json.loads(record.read_text())["code"] == "html-login-rejected"


def test_netrc_password_is_not_sent_as_a_basic_header(loopback, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login ada password hunter2\n")
    os.chmod(netrc, 0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.delenv("DECAENV_FLAME_PASSWORD", raising=False)
    monkeypatch.delenv("DECAENV_FLAME_USERNAME", raising=False)
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as zf:
        zf.writestr("FLAME2020/other.txt", b"x")
    loopback.routes["/download.php"] = send_bytes(payload.getvalue())
    run_fetch(_flame_manifest(tmp_path, loopback.url("/download.php"), "form-post"), tmp_path / "d")
    (post,) = [r for r in loopback.seen if r["method"] == "POST"]
    assert post["form"]["password"] == "hunter2"  # where the manifest says: the form body
    assert "Authorization" not in post["headers"]

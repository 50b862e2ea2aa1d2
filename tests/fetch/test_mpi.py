"""The FLAME download: an HTTPS form POST of the user's credentials to the MPI download server, as
DECA's fetch_data.sh does — but without echoing the password, putting it in argv/URLs/logs/files, or
turning TLS off. Against a loopback server that answers like the MPI login."""

from __future__ import annotations

import json

import os
import subprocess
import sys

import pytest
from _support.fetch_server import GOOD_PASSWORD, GOOD_USER, Payload, write_manifest, zip_bytes

from decaenv.fetch.credentials import Secret, get_credentials
from decaenv.fetch.manifest import CredentialRealm


def _manifest(tmp_path, server):
    """A FLAME entry like deca.toml's, checked by the FLAME loader but not for DECA's component count: these tests
    transfer `mini_flame_zip` (FLAME's real pickle layout with 20 components, 7 MB instead of 53 MB)."""
    url = server.base + "/download.php?domain=flame&sfile=FLAME2020.zip&resume=1"
    return write_manifest(tmp_path / "m.toml", [{
        "id": "flame", "dest": "generic_model.pkl", "license": "acct", "validate": {"kind": "flame-model", "deca": False},
        "post": ["flame-npz"],
        "sources": [{"kind": "form-post", "url": url, "credentials": "flame", "archive": "FLAME2020.zip",
                     "member": "generic_model.pkl"},
                    {"kind": "manual", "url": "https://pan.baidu.com/s/1ejoL6dezMNoj_vPX4Dd-nA", "code": "ngw8",
                     "archive": "FLAME2020.zip", "member": "generic_model.pkl"}]}])


def test_good_credentials_install_generic_model(server, tmp_path, run_fetch, mini_flame_zip, monkeypatch):
    archive, pkl = mini_flame_zip
    server.archives["FLAME2020.zip"] = Payload(archive)
    monkeypatch.setenv("DECAENV_FLAME_PASSWORD", GOOD_PASSWORD)
    out = run_fetch(_manifest(tmp_path, server), username=GOOD_USER)
    result = out.one("flame")
    assert result.status.ok and (out.data_dir / "generic_model.pkl").read_bytes() == pkl
    assert (out.data_dir / "generic_model.npz").is_file()  # chumpy-free copy for the runtime
    assert not (out.data_dir / "FLAME2020").exists() and not (out.data_dir / "FLAME2020.zip").exists()
    assert not out.partials()
    (post,) = server.requests("/download.php")
    assert post["method"] == "POST" and post["user"] == GOOD_USER and post["password_sent"]
    assert "password" not in post["query"] and GOOD_PASSWORD not in post["query"]
    from decaenv.loaders.flame import load_flame

    assert load_flame(out.data_dir / "generic_model.npz").v_template.shape == (5023, 3)


def test_bad_credentials_get_the_login_page(server, tmp_path, run_fetch, mini_flame_zip, monkeypatch):
    server.archives["FLAME2020.zip"] = Payload(mini_flame_zip[0])
    monkeypatch.setenv("DECAENV_FLAME_PASSWORD", "wrong")
    out = run_fetch(_manifest(tmp_path, server), username=GOOD_USER)
    err = out.one("flame").error
    assert out.code("flame") == "html-login-rejected"
    assert "username or password rejected" in err.message and "Login - FLAME" in err.message
    assert f"user '{GOOD_USER}', password from $DECAENV_FLAME_PASSWORD" in err.message
    assert "ngw8" in err.hint and out.sleeps == []
    assert not (out.data_dir / "generic_model.pkl").exists() and not out.partials()
    (page,) = out.quarantined()  # what the login POST answered: classified, never stored verbatim
    record = json.loads(page.read_bytes())
    assert record["title"] == "Login - FLAME" and record["code"] == "html-login-rejected"
    assert record["http_status"] == 200 and b"Wrong username" not in page.read_bytes()


def test_licence_not_accepted_on_the_website(server, tmp_path, run_fetch, mini_flame_zip, monkeypatch):
    server.archives["FLAME2020.zip"] = Payload(mini_flame_zip[0])
    server.licence_ok = False
    monkeypatch.setenv("DECAENV_FLAME_PASSWORD", GOOD_PASSWORD)
    out = run_fetch(_manifest(tmp_path, server), username=GOOD_USER)
    assert out.code("flame") == "html-license-not-accepted"
    assert not (out.data_dir / "generic_model.pkl").exists()


def test_resume_of_the_archive_reposts(server, tmp_path, run_fetch, mini_flame_zip, monkeypatch):
    archive, pkl = mini_flame_zip
    server.archives["FLAME2020.zip"] = Payload(archive, drop_after=len(archive) // 2, drops=1)
    monkeypatch.setenv("DECAENV_FLAME_PASSWORD", GOOD_PASSWORD)
    out = run_fetch(_manifest(tmp_path, server), username=GOOD_USER)
    assert out.one("flame").status.ok
    posts = server.requests("/download.php")
    assert [p["method"] for p in posts] == ["POST", "POST"] and posts[1]["range"].startswith("bytes=")


def test_zip_without_the_member(server, tmp_path, run_fetch, monkeypatch):
    server.archives["FLAME2020.zip"] = Payload(zip_bytes({"FLAME2020/male_model.pkl": b"x"}))
    monkeypatch.setenv("DECAENV_FLAME_PASSWORD", GOOD_PASSWORD)
    out = run_fetch(_manifest(tmp_path, server), username=GOOD_USER)
    assert out.code("flame") == "member-missing" and not (out.data_dir / "generic_model.pkl").exists()
    assert "FLAME2020.zip" in out.quarantined()[0].name


def test_missing_credentials_without_a_terminal(server, tmp_path, run_fetch, monkeypatch):
    monkeypatch.delenv("DECAENV_FLAME_PASSWORD", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    out = run_fetch(_manifest(tmp_path, server), username=GOOD_USER)
    err = out.one("flame").error
    assert out.code("flame") == "credentials-missing" and "DECAENV_FLAME_PASSWORD" in err.hint
    assert "never takes passwords on the command line" in err.hint and server.log == []


REALM = CredentialRealm("flame", "FLAME account", "DECAENV_FLAME_USERNAME", "DECAENV_FLAME_PASSWORD")
URL = "https://download.is.tue.mpg.de/download.php?domain=flame&sfile=FLAME2020.zip&resume=1"


def test_netrc(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine download.is.tue.mpg.de login ada@example.org password pa55word\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    for var in ("DECAENV_FLAME_USERNAME", "DECAENV_FLAME_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    creds = get_credentials(REALM, URL, interactive=False)
    assert (creds.username, creds.password.reveal(), creds.origin) == ("ada@example.org", "pa55word", "netrc")
    netrc.chmod(0o644)
    with pytest.raises(Exception, match="other users can read it") as info:
        get_credentials(REALM, URL, interactive=False)
    assert info.value.hint == f"chmod 600 {netrc}"


def test_prompt_is_hidden_and_used_last(monkeypatch, tmp_path):
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.delenv("DECAENV_FLAME_PASSWORD", raising=False)
    asked = []
    creds = get_credentials(REALM, URL, username="ada", interactive=True,
                            prompt=lambda text: asked.append(text) or "typed")
    assert creds.password.reveal() == "typed" and creds.origin == "prompt" and "(hidden)" in asked[0]


def test_secret_never_prints():
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) + str(secret) + f"{secret}" + "%s" % secret
    creds = get_credentials(REALM, URL, username="ada", interactive=True, prompt=lambda text: "hunter2")
    assert "hunter2" not in repr(creds)


def test_password_never_leaks_through_the_cli(server, tmp_path, mini_flame_zip, monkeypatch):
    """The whole command, at -vv debug logging and --json: the password appears in no output and no file."""
    server.archives["FLAME2020.zip"] = Payload(mini_flame_zip[0])
    data = tmp_path / "data"
    data.mkdir()
    env = dict(os.environ, DECAENV_MANIFEST=str(_manifest(tmp_path, server)),
               DECAENV_FLAME_PASSWORD=GOOD_PASSWORD)
    argv = [sys.executable, "-m", "decaenv", "-vv", "--data-dir", str(data), "fetch", "--username", GOOD_USER,
            "--accept-license"]
    runs = [subprocess.run(argv + extra, capture_output=True, text=True, env=env, timeout=120) for extra in ([], ["--json"])]
    assert [r.returncode for r in runs] == [0, 0]
    for r in runs:
        assert GOOD_PASSWORD not in r.stdout + r.stderr
    for root, _dirs, files in os.walk(tmp_path):
        for name in files:
            path = os.path.join(root, name)
            if name.endswith((".pkl", ".npz")):
                continue
            with open(path, "rb") as fh:
                assert GOOD_PASSWORD.encode() not in fh.read(), path
    assert GOOD_PASSWORD not in " ".join(argv)

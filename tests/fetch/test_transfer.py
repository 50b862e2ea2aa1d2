"""Downloads over HTTP against loopback servers: resume, retries, wrong answers. Never a wrong or partial
file at the destination."""

from __future__ import annotations

import os

import pytest
from _support.fetch_server import Payload, sha, write_manifest

from decaenv.errors import FetchError


@pytest.fixture
def payload():
    return os.urandom(3_500_000)


def _manifest(tmp_path, server, name, data, **entry):
    spec = {"id": "blob", "dest": name, "sha256": sha(data), "size": len(data),
            "sources": [{"kind": "https", "url": server.url(name)}]}
    spec.update(entry)
    return write_manifest(tmp_path / "m.toml", [spec])


def test_plain_download(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    result = out.one("blob")
    assert result.action == "downloaded" and result.status.ok and result.bytes == len(payload)
    assert (out.data_dir / "blob.bin").read_bytes() == payload
    assert not out.partials() and not out.quarantined()
    again = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert again.one("blob").action == "present" and len(server.requests("/files")) == 1


def test_connection_dropped_mid_body_resumes_with_range(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, drop_after=1_500_000, drops=1)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.one("blob").status.ok and (out.data_dir / "blob.bin").read_bytes() == payload
    ranges = [r["range"] for r in server.requests("/files")]
    assert ranges[0] is None and ranges[1] == "bytes=1500000-"
    assert server.requests("/files")[1]["if_range"]  # the ETag seen first guards the splice
    assert out.sleeps == [1.0] and not out.partials()


def test_connection_always_dropped_is_truncated(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, drop_after=0)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload), retries=2)
    assert out.code("blob") == "truncated"
    assert "run the same command again to resume" in out.one("blob").error.hint
    assert not (out.data_dir / "blob.bin").exists() and out.sleeps == [1.0, 2.0]


def test_truncated_partial_is_resumed_by_the_next_run(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, drop_after=100_000)
    manifest = _manifest(tmp_path, server, "blob.bin", payload)
    out = run_fetch(manifest, retries=1)  # progress on every attempt: stops at the attempt cap
    assert out.code("blob") == "truncated" and "gave up after" in out.one("blob").error.message
    assert not (out.data_dir / "blob.bin").exists()
    (partial,) = out.partials()
    kept = partial.stat().st_size
    assert 0 < kept < len(payload) and partial.name.startswith(".blob.bin.")
    server.files["blob.bin"] = Payload(payload)
    again = run_fetch(manifest)
    assert again.one("blob").action == "resumed" and again.one("blob").status.ok
    assert server.requests("/files")[-1]["range"] == f"bytes={kept}-"
    assert (out.data_dir / "blob.bin").read_bytes() == payload and not again.partials()


def test_server_ignoring_range_restarts_from_zero(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, ignore_range=True, drop_after=1_500_000, drops=1)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    result = out.one("blob")
    assert result.status.ok and (out.data_dir / "blob.bin").read_bytes() == payload
    assert [r["range"] for r in server.requests("/files")] == [None, "bytes=1500000-"]
    assert any("ignored the resume request" in n for n in result.notes)


def test_bad_content_range_restarts_without_range(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, bad_range=True, drop_after=1_500_000, drops=1)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.one("blob").status.ok and (out.data_dir / "blob.bin").read_bytes() == payload
    assert [r["range"] for r in server.requests("/files")] == [None, "bytes=1500000-", None]


def test_wrong_bytes_are_quarantined_never_installed(server, tmp_path, run_fetch, payload):
    wrong = bytearray(payload)
    wrong[123456] ^= 0xFF
    server.files["blob.bin"] = Payload(bytes(wrong))
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.code("blob") == "hash-mismatch"
    assert isinstance(out.one("blob").error, FetchError)
    assert not (out.data_dir / "blob.bin").exists() and not out.partials()
    (quarantined,) = out.quarantined()
    assert "hash-mismatch" in quarantined.name and quarantined.read_bytes() == bytes(wrong)
    assert str(quarantined) in out.one("blob").error.hint


def test_wrong_bytes_do_not_replace_a_good_file(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload)
    manifest = _manifest(tmp_path, server, "blob.bin", payload)
    run_fetch(manifest)
    server.files["blob.bin"] = Payload(os.urandom(len(payload)))
    out = run_fetch(manifest, force=True)
    assert out.code("blob") == "hash-mismatch"
    assert (out.data_dir / "blob.bin").read_bytes() == payload


def test_wrong_size_stops_at_the_first_chunk(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload + b"extra")
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.code("blob") == "size-mismatch"
    assert "offers 3500005 bytes, the manifest expects 3500000" in out.one("blob").error.message
    assert not (out.data_dir / "blob.bin").exists() and len(out.quarantined()) == 1


def test_retry_after_is_honoured(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, statuses=[503, 429], retry_after="7")
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.one("blob").status.ok and out.sleeps == [7.0, 7.0]


def test_exponential_backoff_then_http_error(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, statuses=[500] * 10)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload), retries=3)
    assert out.code("blob") == "http-error" and out.sleeps == [1.0, 2.0, 4.0]
    assert not (out.data_dir / "blob.bin").exists()


def test_retry_after_too_long_is_reported(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, statuses=[503], retry_after="86400")
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.code("blob") == "http-error" and "retry blob.bin after 86400 s" in out.one("blob").error.message
    assert out.sleeps == []


@pytest.mark.parametrize("status, code", [(404, "http-404"), (403, "http-403"), (401, "http-401")])
def test_client_errors_are_not_retried(server, tmp_path, run_fetch, payload, status, code):
    server.files["blob.bin"] = Payload(payload, statuses=[status])
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.code("blob") == code and out.sleeps == [] and len(server.requests("/files")) == 1
    assert "raw" not in out.one("blob").error.hint and "get blob.bin from" in out.one("blob").error.hint


def test_html_instead_of_the_file(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, html="<html><title>Moved</title>gone</html>")
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.code("blob") == "html-page" and "page title: 'Moved'" in out.one("blob").error.message
    assert not (out.data_dir / "blob.bin").exists() and not out.partials()
    assert out.quarantined()[0].read_bytes().startswith(b"<html>")


def test_html_with_a_binary_content_type_is_caught_too(server, tmp_path, run_fetch):
    page = b"<!DOCTYPE html><html><title>Error</title></html>"
    server.files["x.bin"] = Payload(page)
    manifest = write_manifest(tmp_path / "m.toml", [{"id": "blob", "dest": "x.bin", "sources": [
        {"kind": "https", "url": server.url("x.bin")}]}])
    out = run_fetch(manifest)
    assert out.code("blob") == "html-page" and not (out.data_dir / "x.bin").exists()


def test_no_network_names_the_manual_route(tmp_path, run_fetch, payload):
    import socket

    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{port.getsockname()[1]}/files/blob.bin"  # nothing listens there
    port.close()
    manifest = write_manifest(tmp_path / "m.toml", [{"id": "blob", "dest": "blob.bin", "sources": [
        {"kind": "https", "url": url}, {"kind": "manual", "url": "https://mirror.example/blob.bin", "code": "k1"}]}])
    out = run_fetch(manifest, retries=1)
    err = out.one("blob").error
    assert out.code("blob") == "network" and out.sleeps == [1.0]
    assert "https://mirror.example/blob.bin (extraction code k1)" in err.hint


def test_name_resolution_failure_is_offline(monkeypatch):
    import requests

    from decaenv.fetch.errors import classify_network

    exc = requests.exceptions.ConnectionError("Failed to resolve 'raw.githubusercontent.com' "
                                              "([Errno -2] Name or service not known)")
    err = classify_network(exc, url="https://raw.githubusercontent.com/x", what="x.obj", manual="get x.obj from U")
    assert err.code == "offline" and "--from" in err.hint and "get x.obj from U" in err.hint


def test_plain_http_refused_for_other_hosts():
    from decaenv.fetch.http import check_url

    check_url("http://127.0.0.1:8000/x")
    check_url("https://example.org/x")
    with pytest.raises(FetchError, match="only https") as info:
        check_url("http://example.org/x")
    assert info.value.code == "insecure-url"


def test_redirect_to_plain_http_refused(server, tmp_path, run_fetch, payload):
    import http.server

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://example.org/blob.bin")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    import threading

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.handle_request, daemon=True).start()
    manifest = write_manifest(tmp_path / "m.toml", [{"id": "blob", "dest": "blob.bin", "sources": [
        {"kind": "https", "url": f"http://127.0.0.1:{httpd.server_address[1]}/blob.bin"}]}])
    out = run_fetch(manifest)
    httpd.server_close()
    assert out.code("blob") == "insecure-url"


def test_tls_verification_cannot_be_disabled():
    from decaenv.fetch.http import HttpOptions, make_session

    assert make_session(HttpOptions()).verify is True


def test_disk_space_preflight(server, tmp_path, run_fetch, payload, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    server.files["blob.bin"] = Payload(payload)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.code("blob") == "disk-space" and "not enough disk space for blob.bin: needs 3.5 MB" in \
        out.one("blob").error.message
    assert server.requests("/files") == [] and out.partials() == []


def test_stalled_server_times_out(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, stall_after=0, stall_s=2.0)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload), retries=1, read_timeout=0.3)
    assert out.code("blob") == "timeout" and "read timeout" in out.one("blob").error.message
    assert "DECAENV_FETCH_TIMEOUT" in out.one("blob").error.hint and out.sleeps == [1.0]
    assert not (out.data_dir / "blob.bin").exists()


def test_stall_mid_body_resumes(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, stall_after=2_000_000, stall_s=1.5, stalls=1)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload), read_timeout=0.3)
    assert out.one("blob").status.ok and (out.data_dir / "blob.bin").read_bytes() == payload
    ranges = [r["range"] for r in server.requests("/files")]
    assert ranges[0] is None and ranges[1] == "bytes=1048576-"  # every whole buffer read before the stall


def test_unrequested_gzip_encoding_is_decoded(server, tmp_path, run_fetch, payload):
    server.files["blob.bin"] = Payload(payload, gzip=True)
    out = run_fetch(_manifest(tmp_path, server, "blob.bin", payload))
    assert out.one("blob").status.ok and (out.data_dir / "blob.bin").read_bytes() == payload

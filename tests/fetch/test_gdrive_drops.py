"""Issue 11 §5: a connection dropped while talking to Google Drive is a network error (exit 1), retried like
https sources — never an internal error (exit 2). A loopback TCP relay in front of the fake Drive server drops
the first connections: before any answer (reset) or halfway through the confirmation page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest
from _support.fetch_server import Payload, sha, write_manifest

pytest.importorskip("gdown")

DRIVE_ID = "1rp8kdyLPvErw2dTmqtjISRVvQLj6Yzje"


class FlakyRelay:
    """127.0.0.1 relay to `target_port`: the first `drops` connections are cut (`mode` "reset": the request is
    read and the socket closed without an answer; "mid-page": the answer is relayed up to `cut` bytes)."""

    def __init__(self, target_port: int, drops: int, mode: str, cut: int = 400):
        self.target_port, self.drops, self.mode, self.cut = target_port, drops, mode, cut
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            drop = self.connections <= self.drops
            threading.Thread(target=self._relay, args=(client, drop), daemon=True).start()

    def _relay(self, client: socket.socket, drop: bool) -> None:
        with client:
            request = client.recv(65536)
            if drop and self.mode == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return
            with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
                upstream.sendall(request)
                sent = 0
                while True:
                    chunk = upstream.recv(65536)
                    if not chunk:
                        return
                    if drop and sent + len(chunk) >= self.cut:
                        client.sendall(chunk[: self.cut - sent])
                        return
                    client.sendall(chunk)
                    sent += len(chunk)

    def close(self) -> None:
        self.sock.close()


def _manifest(tmp_path, relay, data):
    spec = {"id": "deca-model", "dest": "deca_model.tar", "sha256": sha(data), "size": len(data),
            "sources": [{"kind": "gdrive", "id": DRIVE_ID,
                         "url": f"http://127.0.0.1:{relay.port}/uc?export=download&id={{id}}"}]}
    return write_manifest(tmp_path / "m.toml", [spec])


@pytest.mark.parametrize("mode", ["reset", "mid-page"])
def test_drops_on_the_drive_page_are_retried(mode, server, tmp_path, run_fetch):
    data = os.urandom(2_000_000)
    server.drive[DRIVE_ID] = Payload(data)
    relay = FlakyRelay(server.httpd.server_address[1], drops=2, mode=mode)
    try:
        out = run_fetch(_manifest(tmp_path, relay, data), retries=3)
    finally:
        relay.close()
    result = out.one("deca-model")
    assert result.error is None and result.status.ok
    assert (out.data_dir / "deca_model.tar").read_bytes() == data
    assert len(out.sleeps) == 2 and relay.connections == 3  # two backoffs, then the page and the file


@pytest.mark.parametrize("mode", ["reset", "mid-page"])
def test_a_connection_that_keeps_dropping_is_a_network_error(mode, server, tmp_path, run_fetch):
    server.drive[DRIVE_ID] = Payload(os.urandom(2_000_000))
    relay = FlakyRelay(server.httpd.server_address[1], drops=1000, mode=mode)
    try:
        out = run_fetch(_manifest(tmp_path, relay, b"x"), retries=2)
    finally:
        relay.close()
    assert out.code("deca-model") == "network"
    assert len(out.sleeps) == 2 and relay.connections == 3
    assert not (out.data_dir / "deca_model.tar").exists() and not out.partials()


def test_cli_exit_code_is_1_with_a_one_line_error(server, tmp_path):
    server.drive[DRIVE_ID] = Payload(os.urandom(2_000_000))
    relay = FlakyRelay(server.httpd.server_address[1], drops=1000, mode="reset")
    manifest = _manifest(tmp_path, relay, b"x")
    env = dict(os.environ, DECAENV_MANIFEST=str(manifest), DECAENV_FETCH_RETRIES="1")
    data = tmp_path / "data"
    data.mkdir()
    try:
        run = subprocess.run([sys.executable, "-m", "decaenv", "--data-dir", str(data), "fetch", "--accept-license",
                              "deca-model"], capture_output=True, text=True, env=env, timeout=120)
    finally:
        relay.close()
    assert run.returncode == 1, run.stderr
    assert "internal error" not in run.stderr.lower() and "Traceback" not in run.stderr
    assert "network error while fetching" in run.stderr

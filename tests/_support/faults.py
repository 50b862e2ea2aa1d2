"""Fault-injection helpers (importable as `_support.faults`).

The fault-injection suite's own tools: a misbehaving loopback server, manifests, and a fetch runner.

`Loopback` answers each path with a handler (a function of the request handler), so a test states the
misbehaviour it needs in a few lines: a flipped byte behind a correct 206, a trickle, a login page that
echoes the submitted form, a recorder of the headers that arrived. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

from _support.fetch_server import write_manifest

__all__ = ["Handler", "Loopback", "echo_login", "run_fetch", "send_bytes", "trickle", "write_manifest"]


Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class Loopback:
    """A threaded HTTP/1.1 server on 127.0.0.1: `routes[path] = handler`; every request's headers are kept."""

    def __init__(self):
        self.routes: Dict[str, Handler] = {}
        self.seen: List[dict] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self.httpd.daemon_threads = True
        # shutdown() waits up to one poll interval: the default 0.5 s cost every test using a server 0.5 s.
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler_class(server: Loopback):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _dispatch(self):
            body = b""
            if self.command == "POST":
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            server.seen.append(
                {
                    "method": self.command,
                    "path": urlsplit(self.path).path,
                    "headers": dict(self.headers.items()),
                    "form": self.form,
                }
            )
            route = server.routes.get(urlsplit(self.path).path)
            if route is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            route(self)

        do_GET = do_POST = _dispatch

    return H


def send_bytes(data: bytes, *, drop_after: Optional[int] = None) -> Handler:
    """Serve `data` with Range support; the first response is cut after `drop_after` bytes."""
    state = {"drops": 1 if drop_after is not None else 0}

    def handle(h) -> None:
        start = 0
        rng = h.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.send_header("ETag", '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        if state["drops"]:
            state["drops"] -= 1
            h.wfile.write(body[:drop_after])
            h.wfile.flush()
            h.close_connection = True
            import socket

            h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(body)

    return handle


def trickle(total: int, every: float) -> Handler:
    """Promise `total` bytes and send one every `every` seconds (the connection never goes quiet long enough
    for a read timeout)."""

    def handle(h) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(total))
        h.end_headers()
        for _ in range(total):
            try:
                h.wfile.write(b"x")
                h.wfile.flush()
            except OSError:
                return
            time.sleep(every)

    return handle


def echo_login(h) -> None:
    """A login page that echoes the submitted form back (in its title and body), with status 200."""
    echoed = " ".join(f"{k}={v}" for k, v in h.form.items())
    page = (
        f"<!DOCTYPE html><html><head><title>Login failed for {echoed}</title></head><body><form>"
        f"<input name=username value='{h.form.get('username', '')}'><input type=password "
        f"value='{h.form.get('password', '')}'></form>Wrong username or password</body></html>"
    ).encode()
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(page)))
    h.end_headers()
    h.wfile.write(page)


def run_fetch(manifest: Path, data_dir: Path, ids=(), importing: Optional[List[Path]] = None, **http):
    """Fetch (or import) in-process: licences accepted, no prompts, no real backoff sleeps."""
    from decaenv.fetch.engine import Fetcher, FetchOptions
    from decaenv.fetch.http import HttpOptions
    from decaenv.fetch.manifest import load_manifest

    data_dir.mkdir(parents=True, exist_ok=True)
    http.setdefault("retries", 1)
    options = FetchOptions(http=HttpOptions(sleep=lambda s: None, **http), accept_license=True, interactive=False)
    man = load_manifest(manifest)
    fetcher = Fetcher(man, data_dir, options)
    if importing is not None:
        from decaenv.fetch.importer import import_paths

        return import_paths(fetcher, man.entries, importing)
    return fetcher.fetch(man.select(ids, everything=not ids))

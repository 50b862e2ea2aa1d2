"""Loopback servers and manifest helpers for the fetch tests (importable as `_support.fetch_server`).

Loopback servers (127.0.0.1 only) that behave like the places DECA's files come from, and helpers.

`FakeServer` serves:
    GET  /files/<name>                     a payload, with per-file behaviour (Range, drops, throttling,
                                           wrong bytes, statuses to answer first, an HTML page instead)
    POST /download.php?domain=flame&sfile=<archive>&resume=1
                                           the MPI login: right form credentials -> the archive (Range
                                           supported); wrong ones -> an HTML login page with status 200;
                                           `licence_ok=False` -> an HTML licence page
    GET  /uc?export=download&id=<id>        Google Drive: small files directly (Content-Disposition), big
                                           ones behind the "can't scan for viruses" confirmation page whose
                                           form points at /download; `drive_mode="quota"` -> the quota page,
                                           `"loop"` -> the confirmation page forever
    GET  /download?id=..&confirm=t&uuid=..  the file after confirmation
Every request is logged (method, path, Range header, form user, whether a password was sent).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

GOOD_USER, GOOD_PASSWORD = "ada@example.org", "s3cret p@ss&word="


@dataclass
class Payload:
    data: bytes
    ignore_range: bool = False
    drop_after: Optional[int] = None  # close the connection after this many body bytes...
    drops: int = 1 << 30  # ...on this many responses (then behave)
    throttle: Optional[float] = None  # bytes per second
    statuses: List[int] = field(default_factory=list)  # answered (once each) before the payload
    retry_after: Optional[str] = None
    html: Optional[str] = None  # serve this page (status 200, text/html) instead
    content_type: str = "application/octet-stream"
    bad_range: bool = False  # answer 206 with a Content-Range that does not fit
    stall_after: Optional[int] = None  # stop sending (connection kept open) after this many bytes...
    stall_s: float = 0.0  # ...for this long
    stalls: int = 1 << 30  # on this many responses
    gzip: bool = False  # send the body gzip-encoded although identity was asked for


LOGIN_PAGE = """<!DOCTYPE html><html><head><title>Login - FLAME</title></head><body>
<form method="post" action="/login.php"><input name="username"><input type="password" name="password">
<button>Sign in</button></form><p>Wrong username or password.</p></body></html>"""


LICENSE_PAGE = """<!DOCTYPE html><html><head><title>FLAME - License</title></head><body>
<h1>License</h1><p>Before downloading you must read and accept the license terms.</p>
<form action="/accept.php"><input type="checkbox" name="agree"> I agree</form></body></html>"""


QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>
<div class="uc-main"><p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try accessing the file again later. If the file you are trying to access is particularly large or is shared with many people, it may take up to 24 hours to be able to view or download the file.</p></div></body></html>"""


def confirm_page(base: str, file_id: str) -> str:
    form = (
        f'<form id="download-form" action="{base}/download" method="get">'
        f'<input type="hidden" name="id" value="{file_id}"><input type="hidden" name="export" value="download">'
        f'<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="0f3c-uuid">'
        f'<input type="submit" id="uc-download-link" value="Download anyway"></form>'
    )
    return (
        "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
        '<p class="uc-warning-caption">Google Drive can\'t scan this file for viruses.</p>' + form + "</body></html>"
    )


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with the behaviours listed in the module docstring."""

    def __init__(self):
        self.files: Dict[str, Payload] = {}
        self.archives: Dict[str, Payload] = {}  # MPI: sfile -> payload
        self.drive: Dict[str, Payload] = {}  # Drive: id -> payload
        self.drive_mode = "normal"
        self.drive_direct_limit = 1 << 16  # smaller files come without the confirmation page
        self.licence_ok = True
        self.log: List[dict] = []
        self._lock = threading.Lock()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        # shutdown() waits up to one poll interval: the default 0.5 s cost every test using a server 0.5 s.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base}/files/{name}"

    def requests(self, path_prefix: str = "") -> List[dict]:
        with self._lock:
            return [r for r in self.log if r["path"].startswith(path_prefix)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: FakeServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _record(self, form=None):
            entry = {
                "method": self.command,
                "path": urlsplit(self.path).path,
                "query": urlsplit(self.path).query,
                "range": self.headers.get("Range"),
                "if_range": self.headers.get("If-Range"),
            }
            if form is not None:
                entry["user"] = form.get("username", [None])[0]
                entry["password_sent"] = "password" in form
            with server._lock:
                server.log.append(entry)

        def do_GET(self):
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            self._record()
            if parts.path.startswith("/files/"):
                payload = server.files.get(parts.path[len("/files/") :])
                return self._serve(payload)
            if parts.path == "/uc":
                return self._drive_uc(query.get("id", [""])[0])
            if parts.path == "/download":
                payload = server.drive.get(query.get("id", [""])[0])
                if server.drive_mode == "loop" or query.get("confirm") != ["t"]:
                    return self._page(confirm_page(server.base, query.get("id", [""])[0]))
                return self._serve(payload, disposition=True)
            self._status(404)

        def do_POST(self):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length", 0))
            form = parse_qs(self.rfile.read(length).decode("utf-8"))
            self._record(form)
            if parts.path != "/download.php":
                return self._status(404)
            query = parse_qs(parts.query)
            good = form.get("username") == [GOOD_USER] and form.get("password") == [GOOD_PASSWORD]
            if not good:
                return self._page(LOGIN_PAGE)
            if not server.licence_ok:
                return self._page(LICENSE_PAGE)
            return self._serve(server.archives.get(query.get("sfile", [""])[0]), disposition=True)

        def _drive_uc(self, file_id: str):
            payload = server.drive.get(file_id)
            if payload is None:
                return self._status(404)
            if server.drive_mode == "quota":
                return self._page(QUOTA_PAGE)
            if server.drive_mode == "normal" and len(payload.data) <= server.drive_direct_limit:
                return self._serve(payload, disposition=True)
            return self._page(confirm_page(server.base, file_id))

        def _status(self, code: int, headers=None):
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _page(self, html: str):
            body = html.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _serve(self, payload: Optional[Payload], disposition: bool = False):
            if payload is None:
                return self._status(404)
            if payload.statuses:
                code = payload.statuses.pop(0)
                return self._status(code, {"Retry-After": payload.retry_after} if payload.retry_after else None)
            if payload.html is not None:
                return self._page(payload.html)
            data, start = payload.data, 0
            rng = self.headers.get("Range")
            etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
            if rng and not payload.ignore_range:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(data):
                    return self._status(416, {"Content-Range": f"bytes */{len(data)}"})
                self.send_response(206)
                first = start + 1 if payload.bad_range else start
                self.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            if payload.gzip:
                import gzip

                body = gzip.compress(body)
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Type", payload.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            if disposition:
                self.send_header("Content-Disposition", 'attachment; filename="payload.bin"')
            self.end_headers()
            limit = len(body)
            if payload.stall_after is not None and payload.stalls > 0:
                payload.stalls -= 1
                self._write(body[: payload.stall_after], None)
                self.wfile.flush()
                time.sleep(payload.stall_s)
                self.close_connection = True
                return
            if payload.drop_after is not None and payload.drops > 0:
                payload.drops -= 1
                limit = min(limit, payload.drop_after)
            self._write(body[:limit], payload.throttle)
            if limit < len(body):
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        def _write(self, body: bytes, throttle: Optional[float]):
            view = memoryview(body)
            step = 1 << 16 if throttle is None else max(1024, int(throttle / 20))
            for i in range(0, len(view), step):
                try:
                    self.wfile.write(view[i : i + step])
                except (BrokenPipeError, ConnectionResetError):
                    return
                if throttle:
                    time.sleep(step / throttle)

    return Handler


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def write_manifest(path: Path, files: List[dict]) -> Path:
    """A schema-1 manifest with licences `test` and `acct` and the realm `flame`; `files` are [[file]] tables
    (a `sources` key holds the [[file.source]] list)."""
    lines = [
        "schema = 1",
        'name = "test"',
        "[licenses.test]",
        'name = "Test licence"',
        'url = "https://example.org/licence"',
        "[licenses.acct]",
        'name = "Account licence"',
        'url = "https://example.org/acct"',
        "account = true",
        "[credentials.flame]",
        'name = "FLAME account"',
        'username_env = "DECAENV_FLAME_USERNAME"',
        'password_env = "DECAENV_FLAME_PASSWORD"',
    ]
    for spec in files:
        spec = dict(spec)
        sources = spec.pop("sources")
        spec.setdefault("license", "test")
        spec.setdefault("default", True)
        lines.append("[[file]]")
        lines.extend(f"{k} = {_toml(v)}" for k, v in spec.items())
        for source in sources:
            lines.append("[[file.source]]")
            lines.extend(f"{k} = {_toml(v)}" for k, v in source.items())
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zip_bytes(members: Dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


class Outcome:
    """Results of an in-process fetch, the backoff sleeps it asked for, and its data dir."""

    def __init__(self, results, sleeps, data_dir: Path):
        self.results, self.sleeps, self.data_dir = results, sleeps, data_dir

    def one(self, entry_id: str):
        return next(r for r in self.results if r.entry.id == entry_id)

    def code(self, entry_id: str) -> Optional[str]:
        from decaenv.fetch.errors import error_code

        err = self.one(entry_id).error
        return None if err is None else error_code(err)

    def partials(self) -> List[Path]:
        return sorted(p for p in self.data_dir.iterdir() if p.name.endswith(".part"))

    def quarantined(self) -> List[Path]:
        q = self.data_dir / ".decaenv" / "quarantine"
        return sorted(q.iterdir()) if q.exists() else []

"""HTTP transfer into a staging file: hash while streaming, validated resume, retries, timeouts.

The rules (git-lfs and huggingface_hub behaviour, plus what neither does):
* TLS verification is always on; plain http is refused except for loopback hosts (test servers).
* Redirects are followed by hand: never to plain http, and a POST body (credentials) is only re-sent
  on a 307/308 to the same origin.
* Resume sends `Range` (+ `If-Range` with the ETag/Last-Modified seen before) and accepts the answer
  only if it is `206` with a `Content-Range` starting exactly at the partial's size and ending at the
  expected total; a `200` means the server ignored Range: the partial is dropped and the full body is
  taken from that very response. The hash is pre-seeded with the bytes already on disk.
* A body slower than `min_rate` bytes/s over `rate_window` seconds, or an attempt past `deadline`, is cut
  (curl's --speed-limit/--speed-time); the partial is kept and the attempt counts as a failure.
* Connection drops, timeouts, short bodies, 408/429/5xx are retried with exponential backoff
  (`Retry-After` honoured), resuming where the body stopped; the retry budget is reset whenever bytes
  arrived. 401/403/404 and HTML pages are never retried.
"""

from __future__ import annotations

import email.utils
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Union
from urllib.parse import urljoin, urlsplit

from decaenv import __version__
from decaenv.errors import UsageError
from decaenv.fetch.credentials import Secret
from decaenv.fetch.errors import classify_html, classify_network, classify_status, fetch_error, redact_url
from decaenv.fetch.hashes import new_hasher, seed_hasher
from decaenv.fetch.progress import Progress
from decaenv.fetch.sniff import is_html
from decaenv.fetch.store import Staging
from decaenv.fetch.stream import Interrupted, RateGuard, stream_body

log = logging.getLogger("decaenv.fetch")

RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)
REDIRECTS = (301, 302, 303, 307, 308)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
HTML_LIMIT = 1 << 20


@dataclass
class HttpOptions:
    """Network behaviour (tests inject `sleep` to record the backoff instead of waiting)."""

    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_after: float = 300.0
    chunk_size: int = 4 << 20
    min_rate: float = 4096.0  # bytes/s over `rate_window` (curl's --speed-limit/--speed-time); 0: off
    rate_window: float = 60.0
    deadline: Optional[float] = 6 * 3600.0  # seconds one attempt may take in all; None: no deadline
    sleep: Callable[[float], None] = time.sleep
    user_agent: str = f"decaenv/{__version__} (+https://github.com/yfeng95/DECA data fetcher)"

    @classmethod
    def from_env(cls) -> "HttpOptions":
        """Defaults, with `DECAENV_FETCH_TIMEOUT` (read timeout, s), `DECAENV_FETCH_RETRIES`,
        `DECAENV_FETCH_MIN_RATE` (bytes/s), `DECAENV_FETCH_RATE_WINDOW` (s) and `DECAENV_FETCH_DEADLINE` (s per
        attempt) applied."""
        options = cls()
        for var, attr, kind in (
            ("DECAENV_FETCH_TIMEOUT", "read_timeout", float),
            ("DECAENV_FETCH_RETRIES", "retries", int),
            ("DECAENV_FETCH_MIN_RATE", "min_rate", float),
            ("DECAENV_FETCH_RATE_WINDOW", "rate_window", float),
            ("DECAENV_FETCH_DEADLINE", "deadline", float),
        ):
            value = os.environ.get(var)
            if value:
                try:
                    setattr(options, attr, kind(value))
                except ValueError:
                    raise UsageError(
                        f"${var}={value!r} is not a number", hint=f"set {var} to a number or unset it"
                    ) from None
        return options


@dataclass
class Request:
    """What to send. `form` values may be `Secret`s: revealed only into the request body."""

    method: str
    url: str
    form: Optional[Dict[str, Union[str, Secret]]] = None

    def body(self) -> Optional[Dict[str, str]]:
        if self.form is None:
            return None
        return {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.form.items()}


@dataclass
class DownloadContext:
    """Who is asking and how to talk about it in errors."""

    what: str  # file name shown in messages
    source_kind: str  # manifest source kind (error classification)
    manual: str = ""  # "download by hand" text appended to hints
    expected_size: Optional[int] = None
    progress: Optional[Progress] = None
    label: str = ""


@dataclass
class Transfer:
    """Outcome of a download into a staging file."""

    sha256: str
    size: int
    resumed_from: int = 0
    restarted: bool = False
    attempts: int = 1
    seconds: float = 0.0


class _Retry(Exception):
    def __init__(self, reason: Exception, after: Optional[float] = None):
        super().__init__(str(reason))
        self.reason, self.after = reason, after


def check_url(url: str) -> None:
    """Refuse anything but https (and http on loopback hosts)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return
    raise fetch_error(
        "insecure-url",
        f"refusing {redact_url(url)}: only https URLs are fetched",
        hint="use the https:// form of the URL (decaenv never downloads over plain http)",
    )


def make_session(options: HttpOptions):
    """A requests session with TLS verification on and decaenv's User-Agent.

    Raises:
        DataError (code "offline"): `DECAENV_OFFLINE=1` is set (no session is ever opened then).
    """
    import requests

    from decaenv.offline import ENV_OFFLINE, is_offline

    if is_offline():
        raise fetch_error(
            "offline",
            f"{ENV_OFFLINE}=1 forbids network access",
            hint=f"unset {ENV_OFFLINE}, or import the files you have with `decaenv fetch --from <file>`",
        )

    session = requests.Session()
    session.verify = True
    session.headers["User-Agent"] = options.user_agent
    # requests adds an HTTP Basic header from ~/.netrc to any request without auth: credentials go only
    # where the manifest says (a login form's body), so every request carries this do-nothing auth.
    session.auth = _no_auth
    return session


def _no_auth(request):
    """requests auth hook that adds nothing (and keeps requests from reading ~/.netrc)."""
    return request


def _origin(url: str):
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def open_response(session, request: Request, options: HttpOptions, headers: Optional[Dict[str, str]] = None):
    """Send `request`, following redirects by hand (see the module docstring); streams the body."""
    method, url, body = request.method, request.url, request.body()
    for _hop in range(10):
        check_url(url)
        resp = session.request(
            method,
            url,
            data=body,
            headers=headers or {},
            stream=True,
            allow_redirects=False,
            timeout=(options.connect_timeout, options.read_timeout),
            verify=True,
        )
        location = resp.headers.get("Location")
        if resp.status_code not in REDIRECTS or not location:
            return resp
        target = urljoin(url, location)
        resp.close()
        if body is not None:
            if resp.status_code in (307, 308):
                if _origin(target) != _origin(url):
                    raise fetch_error(
                        "redirect-refused",
                        f"{redact_url(url)} redirected the login POST to another "
                        f"host ({urlsplit(target).hostname}); refusing to send the credentials there",
                        hint="download the file in a browser and use `decaenv fetch --from`",
                    )
            else:
                method, body = "GET", None
        log.debug("redirect %s -> %s", redact_url(url), redact_url(target))
        url = target
    raise fetch_error("http-error", f"too many redirects from {redact_url(request.url)}", hint="retry later")


def _retry_after(resp) -> Optional[float]:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _content_range(resp):
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", "").strip())
    if not match:
        return None
    start, end, total = match.groups()
    return int(start), int(end), (None if total == "*" else int(total))


def _identity(resp) -> bool:
    return resp.headers.get("Content-Encoding", "identity").strip().lower() in ("", "identity")


def _length(resp) -> Optional[int]:
    value = resp.headers.get("Content-Length")
    if value is None or not value.strip().isdigit() or not _identity(resp):
        return None
    return int(value)


def download(
    session, request: Request, staging: Staging, ctx: DownloadContext, options: HttpOptions, first=None
) -> Transfer:
    """Stream `request`'s body into `staging` (resuming what it already holds); see the module docstring.

    Args:
        first: an already-open response for this request (used only when starting from zero).

    Raises:
        FetchError/IntegrityError: classified (HTML page, status, network, truncated, range, size).
    """
    import requests

    started = time.monotonic()
    offset = staging.size()
    hasher = new_hasher()
    if offset:
        seed_hasher(staging.path, hasher, offset)
    result = Transfer(sha256="", size=offset, resumed_from=offset)
    failures, attempts, use_range = 0, 0, True
    validator = staging.meta.get("validator")
    while True:
        attempts += 1
        if attempts > 4 * (options.retries + 1) + 4:
            raise _truncated(ctx, staging, f"gave up after {attempts - 1} attempts")
        offset = staging.size()
        headers = {"Accept-Encoding": "identity"}
        if offset and use_range:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        got = 0
        try:
            resp = first if (first is not None and offset == 0) else open_response(session, request, options, headers)
            first = None
            with resp:
                plan = _accept(resp, staging, bool(offset) and use_range, ctx, request.url)
                if plan == "restart":
                    use_range = False
                    _restart(staging, ctx)
                    hasher = new_hasher()
                    continue
                if plan == "complete":
                    break
                if plan == "full" and offset:
                    log.info("%s: the server ignored Range; downloading from the start", ctx.what)
                    _restart(staging, ctx)
                    hasher = new_hasher()
                    result.restarted = True
                    offset = 0
                validator = validator or resp.headers.get("ETag") or resp.headers.get("Last-Modified")
                total, mismatch = _expected_total(resp, offset, ctx)
                staging.save_meta(validator=validator, total=total)
                if ctx.progress is not None:
                    ctx.progress.start(ctx.label or ctx.what, total, offset)
                got = _stream(resp, staging, hasher, ctx, options, offset, mismatch)
                length = _length(resp)
                if length is not None and got < length:
                    raise _Retry(_truncated(ctx, staging, f"the connection closed after {got} of {length} bytes"))
            break
        except _Retry as retry:
            failures = 0 if got > 0 else failures + 1
            _wait(retry, failures, ctx, request.url, options, staging)
        except Interrupted as exc:
            got = staging.size() - offset
            failures = 0 if got > 0 and not exc.slow else failures + 1
            reason = (
                _too_slow(ctx, request.url, str(exc))
                if exc.slow
                else _timed_out(ctx, request.url)
                if exc.timeout
                else _truncated(ctx, staging, str(exc))
            )
            _wait(_Retry(reason), failures, ctx, request.url, options, staging)
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            if isinstance(exc, requests.exceptions.SSLError):
                raise classify_network(exc, url=request.url, what=ctx.what) from None
            failures += 1
            _wait(_Retry(exc), failures, ctx, request.url, options, staging)
    result.sha256, result.size = hasher.hexdigest(), staging.size()
    result.attempts, result.seconds = attempts, time.monotonic() - started
    if ctx.progress is not None:
        ctx.progress.done()
    return result


def _restart(staging: Staging, ctx: DownloadContext) -> None:
    staging.truncate()
    staging.save_meta(validator=None, total=None)


def _accept(resp, staging: Staging, ranged: bool, ctx: DownloadContext, url: str) -> str:
    """Decide what to do with a response: "stream" (206 resume / 200 fresh), "full" (200 to a Range
    request), "restart" (bad Content-Range), "complete" (416 because the partial is whole). Raises for
    retryable (`_Retry`) and final failures."""
    status = resp.status_code
    if status in RETRY_STATUS:
        raise _Retry(fetch_error("http-error", f"{redact_url(url)} answered HTTP {status}"), _retry_after(resp))
    if ranged and status == 206:
        cr = _content_range(resp)
        offset = staging.size()
        total = ctx.expected_size or (staging.meta.get("total") if staging.meta.get("total") else None)
        if (
            cr is None
            or cr[0] != offset
            or (cr[2] is not None and cr[1] != cr[2] - 1)
            or (total is not None and cr[2] is not None and cr[2] != total)
        ):
            log.info(
                "%s: the server's Content-Range %r does not continue the partial file at %d bytes; "
                "restarting from zero",
                ctx.what,
                resp.headers.get("Content-Range"),
                offset,
            )
            return "restart"
        return "stream"
    if ranged and status == 416:
        cr = re.fullmatch(r"bytes \*/(\d+)", resp.headers.get("Content-Range", "").strip())
        if cr and int(cr.group(1)) == staging.size():
            return "complete"
        return "restart"
    if status == 200:
        _refuse_html(resp, staging, ctx, url)
        return "full" if ranged else "stream"
    raise classify_status(status, url=url, source_kind=ctx.source_kind, what=ctx.what, manual=ctx.manual)


def _refuse_html(resp, staging: Staging, ctx: DownloadContext, url: str) -> None:
    """An answer labelled text/html: raise the classified error (payloads are sniffed again on their
    first bytes in `_stream`, whatever their Content-Type)."""
    if not is_html(b"", resp.headers.get("Content-Type", "")):
        return
    page = resp.raw.read(HTML_LIMIT, decode_content=True) or b""
    raise _html_error(page, ctx, resp.status_code)


def _html_error(page: bytes, ctx: DownloadContext, status: Optional[int] = None):
    """The classified error for an HTML page, carrying the page (`payload`) and the HTTP status."""
    exc = classify_html(page.decode("utf-8", "replace"), source_kind=ctx.source_kind, what=ctx.what, manual=ctx.manual)
    exc.payload = page
    exc.http_status = status
    return exc


def _expected_total(resp, offset: int, ctx: DownloadContext):
    """(total bytes expected, or None; a size-mismatch error to raise after sniffing, or None)."""
    length = _length(resp)
    total = offset + length if length is not None else None
    if total is not None and ctx.expected_size is not None and total != ctx.expected_size:
        return total, fetch_error(
            "size-mismatch",
            f"{ctx.what}: the server offers {total} bytes, the manifest expects {ctx.expected_size}",
            hint="the source changed or serves something else; download "
            "it by hand" + (f": {ctx.manual}" if ctx.manual else ""),
        )
    return total or ctx.expected_size, None


def _stream(resp, staging: Staging, hasher, ctx: DownloadContext, options: HttpOptions, offset: int, mismatch) -> int:
    """Append the body to the staging file, hashing as it goes (`decaenv.fetch.stream`); returns the bytes.

    The first chunk of a fresh download is sniffed: an HTML page (whatever its Content-Type) or a size
    the manifest does not expect stops the transfer there (the chunk goes with the error, `payload`,
    to the quarantine; the staging file is left as it was).
    """

    def first(chunk: bytes) -> None:
        if offset == 0 and is_html(chunk[:4096]):
            raise _html_error(chunk, ctx, resp.status_code)
        if mismatch is not None:
            mismatch.payload = chunk
            raise mismatch

    progress = ctx.progress.advance if ctx.progress is not None else None
    guard = RateGuard(options.min_rate, options.rate_window, options.deadline)
    return stream_body(
        resp,
        staging.path,
        hasher,
        chunk_size=options.chunk_size,
        on_first=first if (offset == 0 or mismatch is not None) else None,
        on_bytes=progress,
        guard=guard,
    )


def _truncated(ctx: DownloadContext, staging: Staging, why: str):
    return fetch_error(
        "truncated",
        f"{ctx.what}: the connection kept dropping before the end ({why}; {staging.size():,} bytes kept for resuming)",
        hint="run the same command again to resume" + (f"; {ctx.manual}" if ctx.manual else ""),
    )


def _too_slow(ctx: DownloadContext, url: str, why: str):
    return fetch_error(
        "too-slow",
        f"{redact_url(url)} sent {ctx.what} too slowly: {why}",
        hint="run the same command again to resume (the bytes so far are kept); adjust the limits with "
        "DECAENV_FETCH_MIN_RATE (bytes/s), DECAENV_FETCH_RATE_WINDOW and DECAENV_FETCH_DEADLINE (s)"
        + (f"; {ctx.manual}" if ctx.manual else ""),
    )


def _timed_out(ctx: DownloadContext, url: str):
    return fetch_error(
        "timeout",
        f"{redact_url(url)} stopped sending {ctx.what} (read timeout)",
        hint="run the same command again to resume, or raise DECAENV_FETCH_TIMEOUT"
        + (f"; {ctx.manual}" if ctx.manual else ""),
    )


def _wait(retry: _Retry, failures: int, ctx: DownloadContext, url: str, options: HttpOptions, staging: Staging) -> None:
    """Sleep before the next attempt, or raise the classified error when the budget is spent."""
    import requests

    reason = retry.reason
    if failures > options.retries:
        if isinstance(reason, requests.exceptions.RequestException):
            raise classify_network(reason, url=url, what=ctx.what, manual=ctx.manual) from None
        raise reason
    delay = min(options.backoff * (2 ** max(failures - 1, 0)), options.max_backoff)
    if retry.after is not None:
        if retry.after > options.max_retry_after:
            raise fetch_error(
                "http-error",
                f"{redact_url(url)} asks to retry {ctx.what} after {retry.after:.0f} s",
                hint="run the same command again later",
            )
        delay = max(delay, retry.after)
    log.info("%s: %s; retrying in %.1f s", ctx.what, _short(reason), delay)
    options.sleep(delay)


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:120]

"""Downloaders, one per manifest source kind: plain https, the MPI login-form POST, Google Drive.

A downloader streams one source's payload into a staging file and returns the `Transfer`; all network
rules live in `decaenv.fetch.http`. Adding a source kind is one function and one `DOWNLOADERS` row.

Google Drive: gdown's page parser (`gdown.download.get_url_from_gdrive_confirmation`, maintained as
Google changes its pages) turns Drive's "can't scan this file for viruses" confirmation page into the
real download URL, or raises with Drive's own error text (the quota page). The bytes are then fetched
by decaenv's transfer engine, so Drive downloads get the same validated resume, retries, timeouts,
streaming hash, per-process staging and locking as every other source. The endpoint is the source's
`url` (default Google's), which is how tests point it at a loopback server without patching anything.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, Optional, Union

from decaenv.errors import DecaenvError
from decaenv.fetch import http
from decaenv.fetch.credentials import Credentials, Secret
from decaenv.fetch.errors import FetchCode, classify_html, classify_network, fetch_error
from decaenv.fetch.manifest import Entry, Source
from decaenv.fetch.sniff import is_html
from decaenv.fetch.store import Staging

if TYPE_CHECKING:
    import requests

log = logging.getLogger("decaenv.fetch")

GDRIVE_HOPS = 4
ENV_GDRIVE_COOKIES = "DECAENV_GDRIVE_COOKIES"


@dataclass
class Env:
    """What downloaders share during one `decaenv fetch` run."""

    session: requests.Session  # `decaenv.fetch.http.new_session()`
    options: http.HttpOptions
    credentials: Callable[[str, str], Credentials]
    cookies_loaded: Dict[str, bool] = field(default_factory=dict)


Downloader = Callable[[Env, Entry, Source, Staging, http.DownloadContext], http.Transfer]


def source_key(source: Source) -> str:
    """Identity of a source for resuming partials (no secrets in it)."""
    return f"{source.kind}:{source.drive_id or source.download_url}"


def download_https(
    env: Env, entry: Entry, source: Source, staging: Staging, ctx: http.DownloadContext
) -> http.Transfer:
    """A plain GET."""
    return http.download(env.session, http.Request("GET", source.download_url), staging, ctx, env.options)


def download_form(env: Env, entry: Entry, source: Source, staging: Staging, ctx: http.DownloadContext) -> http.Transfer:
    """A login-form POST (username/password in the HTTPS body), as the MPI download server wants."""
    url = source.download_url
    creds = env.credentials(source.credentials or "", url)
    form: Dict[str, Union[str, Secret]] = {
        source.field("username"): creds.username,
        source.field("password"): creds.password,
    }
    log.info(
        "%s: POST to %s as %s (password from %s)", ctx.what, http.redact_url(url), creds.username, creds.password_from
    )
    try:
        return http.download(env.session, http.Request("POST", url, form=form), staging, ctx, env.options)
    except DecaenvError as exc:
        if exc.code is FetchCode.HTML_LOGIN_REJECTED:
            exc.message += f" (user {creds.username!r}, password from {creds.password_from})"
        raise


def _gdown_parser():
    try:
        from gdown.download import get_url_from_gdrive_confirmation
        from gdown.exceptions import FileURLRetrievalError
    except ImportError:
        raise fetch_error(
            "gdown-missing",
            "Google Drive downloads need gdown, which is not installed",
            hint="pip install 'decaenv[fetch]' (or pip install gdown)",
        ) from None
    return get_url_from_gdrive_confirmation, FileURLRetrievalError


def _load_drive_cookies(env: Env) -> None:
    """Use the browser cookies gdown's FAQ tells throttled users to export (read-only, Drive hosts only)."""
    from http.cookiejar import LoadError, MozillaCookieJar

    path = os.environ.get(ENV_GDRIVE_COOKIES) or os.path.join(os.path.expanduser("~"), ".cache", "gdown", "cookies.txt")
    if env.cookies_loaded.get(path) or not os.path.isfile(path):
        return
    env.cookies_loaded[path] = True
    jar = MozillaCookieJar(path)
    try:
        jar.load(ignore_discard=True, ignore_expires=True)
    except (OSError, LoadError) as exc:
        log.warning("ignoring unreadable Google cookies file %s (%s)", path, exc)
        return
    for cookie in jar:
        if cookie.domain.lstrip(".").endswith("google.com"):
            env.session.cookies.set_cookie(cookie)
    log.info("using Google cookies from %s", path)


def download_gdrive(
    env: Env, entry: Entry, source: Source, staging: Staging, ctx: http.DownloadContext
) -> http.Transfer:
    """Google Drive: follow the confirmation page(s) with gdown's parser, then transfer."""
    parse, retrieval_error = _gdown_parser()
    _load_drive_cookies(env)
    url = source.download_url
    for _hop in range(GDRIVE_HOPS):
        resp, page = _drive_page(env, url, ctx)
        if page is None:
            break
        try:
            with warnings.catch_warnings():  # gdown 5.x calls a deprecated bs4 method
                warnings.simplefilter("ignore", DeprecationWarning)
                target = parse(page)
        except retrieval_error as exc:
            raise _page_error(f"{page}\n{exc}", page, ctx) from None
        if target == url:  # the confirmation page points at itself: Drive will not let go
            raise _page_error(page, page, ctx)
        log.debug("%s: Drive confirmation page -> %s", ctx.what, http.redact_url(target))
        url = target
    else:
        raise _page_error(page, page, ctx)
    first = resp if staging.size() == 0 else None
    if first is None:
        resp.close()
    return http.download(env.session, http.Request("GET", url), staging, ctx, env.options, first=first)


def _drive_page(env: Env, url: str, ctx: http.DownloadContext):
    """GET one Drive URL: (the open response, None) for a file, (None, the page) for an HTML page.

    A connection dropped or timed out before the page is read whole is retried with the https transfers'
    backoff (`HttpOptions.retries`), then raised as the classified network error (exit 1), never as a raw
    requests/urllib3 exception. TLS failures are not retried.
    """
    import requests

    failures = 0
    while True:
        try:
            resp = http.open_response(
                env.session, http.Request("GET", url), env.options, headers={"Accept-Encoding": "identity"}
            )
            if (
                resp.status_code != 200
                or "Content-Disposition" in resp.headers
                or not is_html(b"", resp.headers.get("Content-Type", ""))
            ):
                return resp, None
            try:
                return None, resp.raw.read(http.HTML_LIMIT, decode_content=True).decode("utf-8", "replace")
            finally:
                resp.close()
        except requests.exceptions.SSLError as exc:
            raise classify_network(exc, url=url, what=ctx.what, manual=ctx.manual) from None
        except _dropped_errors() as exc:
            failures += 1
            if failures > env.options.retries:
                raise classify_network(exc, url=url, what=ctx.what, manual=ctx.manual) from None
            delay = min(env.options.backoff * (2 ** (failures - 1)), env.options.max_backoff)
            log.info(
                "%s: Google Drive connection dropped (%s); retrying in %.1f s",
                ctx.what,
                " ".join(str(exc).split())[:120],
                delay,
            )
            env.options.sleep(delay)


def _dropped_errors() -> tuple:
    """Exceptions meaning "the connection failed or dropped" (requests, urllib3, http.client, sockets)."""
    import http.client
    import socket

    import requests
    import urllib3

    return (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.HTTPError,
        http.client.HTTPException,
        ConnectionError,
        socket.timeout,
    )


def _page_error(text: str, page: str, ctx: http.DownloadContext):
    """The classified error for a Drive page, carrying the page for the quarantine."""
    exc = classify_html(text, source_kind="gdrive", what=ctx.what, manual=ctx.manual)
    exc.payload = page.encode("utf-8")
    return exc


DOWNLOADERS: Dict[str, Downloader] = {
    "https": download_https,
    "form-post": download_form,
    "gdrive": download_gdrive,
}


def downloader_for(source: Source) -> Optional[Downloader]:
    """The downloader of a source kind (None for manual sources)."""
    return DOWNLOADERS.get(source.kind)

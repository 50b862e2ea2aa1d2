"""Classified fetch failures: every error carries a stable `code`, a one-line message and the fix.

The classes stay inside `decaenv.errors`' hierarchy (so the CLI edge maps them to exit codes); the
`code` is what `--json` reports and what tests assert on. The classifiers turn what a server sent
(status, HTML page, exception) into one of these.
"""

from __future__ import annotations

import enum
import errno as _errno
import re
from typing import Optional, Type, TypeVar, Union, overload

from decaenv._typing import StrPath
from decaenv.errors import DecaenvError, FetchError, FileSystemError, IntegrityError, UnsafeContentError

_SPACE_ERRNOS = (_errno.ENOSPC, getattr(_errno, "EDQUOT", _errno.ENOSPC), _errno.EFBIG)


class FetchCode(str, enum.Enum):
    """A classified fetch failure (stable values, documented in docs/commands/fetch.md; `--json` reports them).

    A `str` enum: `code == "offline"` holds. Its properties say what the engine does with the failure.
    """

    OFFLINE = "offline"
    NETWORK = "network"
    TIMEOUT = "timeout"
    TOO_SLOW = "too-slow"
    TLS = "tls"
    HTTP_401 = "http-401"
    HTTP_403 = "http-403"
    HTTP_404 = "http-404"
    HTTP_ERROR = "http-error"
    HTML_LOGIN_REJECTED = "html-login-rejected"
    HTML_LICENSE_NOT_ACCEPTED = "html-license-not-accepted"
    GDRIVE_QUOTA = "gdrive-quota"
    GDRIVE_INTERSTITIAL = "gdrive-interstitial"
    GDRIVE_PERMISSION = "gdrive-permission"
    HTML_PAGE = "html-page"
    TRUNCATED = "truncated"
    RANGE_INVALID = "range-invalid"
    SIZE_MISMATCH = "size-mismatch"
    HASH_MISMATCH = "hash-mismatch"
    INVALID_CONTENT = "invalid-content"
    UNSAFE_ARCHIVE = "unsafe-archive"
    ARCHIVE_TOO_LARGE = "archive-too-large"
    MEMBER_MISSING = "member-missing"
    DISK_SPACE = "disk-space"
    FILESYSTEM = "filesystem"
    CREDENTIALS_MISSING = "credentials-missing"
    LICENSE_NOT_ACCEPTED = "license-not-accepted"
    MANUAL_ONLY = "manual-only"
    NOT_RECOGNISED = "not-recognised"
    GDOWN_MISSING = "gdown-missing"
    REDIRECT_REFUSED = "redirect-refused"
    INSECURE_URL = "insecure-url"
    LOCKED = "locked"
    SYMLINK_OUTSIDE = "symlink-outside"

    def __str__(self) -> str:
        return self.value

    @property
    def resumable(self) -> bool:
        """The staging file is kept for the next run to resume."""
        return self in _RESUMABLE

    @property
    def quarantine(self) -> bool:
        """The payload is evidence of a refused download: it goes to the quarantine."""
        return self in _QUARANTINE

    @property
    def final(self) -> bool:
        """No other source of the entry is tried after this failure (it would fail the same way)."""
        return self in _FINAL

    @property
    def by_hand(self) -> bool:
        """The user is shown how to download the file by hand."""
        return self in _BY_HAND


_RESUMABLE = frozenset(
    {
        FetchCode.TRUNCATED,
        FetchCode.NETWORK,
        FetchCode.TIMEOUT,
        FetchCode.TOO_SLOW,
        FetchCode.OFFLINE,
        FetchCode.HTTP_ERROR,
        FetchCode.LOCKED,
        FetchCode.DISK_SPACE,
        FetchCode.FILESYSTEM,
    }
)
_QUARANTINE = frozenset(
    {
        FetchCode.SIZE_MISMATCH,
        FetchCode.HASH_MISMATCH,
        FetchCode.INVALID_CONTENT,
        FetchCode.UNSAFE_ARCHIVE,
        FetchCode.MEMBER_MISSING,
    }
)  # a zip bomb is not kept
_FINAL = frozenset({FetchCode.CREDENTIALS_MISSING, FetchCode.DISK_SPACE, FetchCode.INSECURE_URL, FetchCode.FILESYSTEM})
_BY_HAND = frozenset(
    {
        FetchCode.OFFLINE,
        FetchCode.NETWORK,
        FetchCode.TIMEOUT,
        FetchCode.TOO_SLOW,
        FetchCode.GDRIVE_QUOTA,
        FetchCode.GDRIVE_INTERSTITIAL,
        FetchCode.GDRIVE_PERMISSION,
        FetchCode.MANUAL_ONLY,
        FetchCode.HTTP_404,
        FetchCode.HTTP_403,
        FetchCode.HTML_LOGIN_REJECTED,
        FetchCode.HTML_LICENSE_NOT_ACCEPTED,
        FetchCode.CREDENTIALS_MISSING,
        FetchCode.TRUNCATED,
        FetchCode.GDOWN_MISSING,
    }
)

#: Code values (stable, documented in docs/commands/fetch.md).
CODES = tuple(c.value for c in FetchCode)


_E = TypeVar("_E", bound=DecaenvError)


@overload
def fetch_error(
    code: Union[FetchCode, str], message: str, *, hint: Optional[str] = None, path: Optional[StrPath] = None
) -> FetchError: ...


@overload
def fetch_error(
    code: Union[FetchCode, str],
    message: str,
    *,
    hint: Optional[str] = None,
    path: Optional[StrPath] = None,
    cls: Type[_E],
) -> _E: ...


def fetch_error(
    code: Union[FetchCode, str],
    message: str,
    *,
    hint: Optional[str] = None,
    path: Optional[StrPath] = None,
    cls: Type[DecaenvError] = FetchError,
) -> DecaenvError:
    """Build an exception of class `cls` (a `FetchError` unless given) whose `code` is `code` (raise the result)."""
    return cls(message, hint=hint, path=path, code=FetchCode(code))


def code_of(exc: BaseException) -> Optional[FetchCode]:
    """The classified code of an exception, or None for anything unclassified."""
    code = getattr(exc, "code", None)
    if isinstance(code, FetchCode):
        return code
    if isinstance(exc, UnsafeContentError):
        return FetchCode.UNSAFE_ARCHIVE
    if isinstance(exc, IntegrityError):
        return FetchCode.INVALID_CONTENT
    if isinstance(exc, FileSystemError):
        return FetchCode.DISK_SPACE if exc.errno in _SPACE_ERRNOS else FetchCode.FILESYSTEM
    return None


def error_code(exc: BaseException) -> str:
    """The classified code as a string ("error" for other decaenv errors, "internal" for anything else)."""
    code = code_of(exc)
    if code is not None:
        return code.value
    return "error" if isinstance(exc, DecaenvError) else "internal"


# ---------------------------------------------------------------------------------------------- HTML

_LOGIN = re.compile(
    r"type=[\"']?password|\blog ?in\b|\bsign ?in\b|username|wrong password|"
    r"invalid (user|credential|login)",
    re.I,
)
_LICENSE = re.compile(r"licen[cs]e", re.I)
_AGREE = re.compile(r"\b(accept|agree|terms)", re.I)
_QUOTA = re.compile(r"too many users|quota|exceeded|rate limit", re.I)
_SCAN = re.compile(r"virus|can.t scan|cannot scan|download anyway|download-form", re.I)
_GOOGLE_LOGIN = re.compile(
    r"accounts\.google\.com|servicelogin|request access|need access|"
    r"you need permission",
    re.I,
)


def page_title(text: str) -> str:
    """An HTML page's <title> (whitespace folded, at most 80 characters), or ""."""
    return _title(text)


def _title(text: str) -> str:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    return " ".join(match.group(1).split())[:80] if match else ""


def classify_html(text: str, *, source_kind: str, what: str, manual: str = "") -> FetchError:
    """Name the HTML page a server sent instead of `what` (login, licence, Drive quota, ...).

    Args:
        text: the page (any prefix of it).
        source_kind: the manifest source kind ("form-post", "gdrive", "https", "import").
        what: the file name the user wanted, e.g. "deca_model.tar".
        manual: extra fix text (manual download instructions) appended to the hint.
    """
    title = _title(text)
    seen = f" (page title: {title!r})" if title else ""
    tail = f"; {manual}" if manual else ""
    if source_kind == "import-gdrive":
        which = (
            "its 'too many users' quota page"
            if _QUOTA.search(text)
            else "its sign-in page"
            if _GOOGLE_LOGIN.search(text)
            else "its 'cannot scan for viruses' confirmation page"
            if _SCAN.search(text)
            else "a quota or virus-scan confirmation page"
        )
        return fetch_error(
            "html-page",
            f"{what} is an HTML page, not DECA's checkpoint: it is what Google Drive "
            f"serves instead of the file ({which}){seen}",
            hint="download it again in a browser ('Download anyway'), check it is about 414 MiB, then "
            f"`decaenv fetch --from <file>`{tail}",
            cls=IntegrityError,
        )
    if source_kind == "gdrive":
        if _QUOTA.search(text):
            return fetch_error(
                "gdrive-quota",
                f"Google Drive refused {what}: 'too many users have viewed or "
                f"downloaded this file recently' (download quota){seen}",
                hint="wait a few hours and retry, or download it in a browser and run "
                f"`decaenv fetch --from <file>`{tail}",
            )
        if _GOOGLE_LOGIN.search(text):
            return fetch_error(
                "gdrive-permission",
                f"Google Drive asked for a sign-in instead of serving {what}{seen}",
                hint=f"open the link in a browser signed in to Google, then `decaenv fetch --from <file>`{tail}",
            )
        if _SCAN.search(text):
            return fetch_error(
                "gdrive-interstitial",
                f"Google Drive kept answering with its 'cannot scan this file "
                f"for viruses' confirmation page instead of {what}{seen}",
                hint=f"download it in a browser ('Download anyway') and run `decaenv fetch --from <file>`{tail}",
            )
    if source_kind == "form-post":
        has_password_field = re.search(r"type=[\"']?password", text, re.I) is not None
        if not has_password_field and _LICENSE.search(text) and _AGREE.search(text):
            return fetch_error(
                "html-license-not-accepted",
                f"the download server sent a licence page instead of "
                f"{what}: the licence is not accepted for this account{seen}",
                hint=f"log in on the website, accept the licence for this download, then retry{tail}",
            )
        if has_password_field or _LOGIN.search(text):
            return fetch_error(
                "html-login-rejected",
                f"the download server sent a login page instead of {what}: username or password rejected{seen}",
                hint="check them by logging in on the website, then pass --username and the password "
                f"(environment variable, ~/.netrc or the hidden prompt){tail}",
            )
    return fetch_error(
        "html-page",
        f"got an HTML page instead of {what}{seen}",
        hint=f"the source may have moved or need a login; download it by hand{tail}",
    )


# --------------------------------------------------------------------------------------- HTTP status


def classify_status(status: int, *, url: str, source_kind: str, what: str, manual: str = "") -> DecaenvError:
    """A one-line error for a non-retryable HTTP status."""
    tail = f"; {manual}" if manual else ""
    where = _redact(url)
    if status == 401 or (status == 403 and source_kind == "form-post"):
        return fetch_error(
            f"http-{status}",
            f"{where} answered {status} (not authorised) for {what}",
            hint=f"check the account and that its licence is accepted on the website{tail}",
        )
    if status == 403:
        return fetch_error(
            "http-403",
            f"{where} answered 403 (forbidden) for {what}",
            hint=f"the file may not be shared publicly any more or the quota is exhausted{tail}",
        )
    if status == 404:
        return fetch_error(
            "http-404",
            f"{where} answered 404 (not found) for {what}",
            hint=f"the manifest's source may be outdated: download it by hand{tail}",
        )
    return fetch_error("http-error", f"{where} answered HTTP {status} for {what}", hint=f"retry later{tail}")


def _redact(url: str) -> str:
    """The URL without any query value that could carry a secret (kept: domain/sfile/id/export)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    keep = {"domain", "sfile", "id", "export", "resume"}
    query = [(k, v if k in keep else "…") for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="…"), ""))


def redact_url(url: str) -> str:
    """Public form of `_redact` (used in logs and messages)."""
    return _redact(url)


# ------------------------------------------------------------------------------------------ network


def classify_network(exc: BaseException, *, url: str, what: str, manual: str = "") -> DecaenvError:
    """Map a requests/urllib3 exception to offline / tls / timeout / network."""
    import requests

    tail = f"; {manual}" if manual else ""
    where = _redact(url)
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return fetch_error(
            "tls",
            f"TLS verification failed for {where}: {_short(text)}",
            hint="decaenv never disables verification: fix the system CA certificates or point "
            "REQUESTS_CA_BUNDLE at your proxy's CA bundle",
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return fetch_error(
            "timeout",
            f"{where} did not answer in time while fetching {what}",
            hint=f"retry later or raise DECAENV_FETCH_TIMEOUT{tail}",
        )
    if re.search(
        r"Name or service not known|NameResolution|getaddrinfo|Temporary failure in name "
        r"resolution|nodename nor servname|Network is unreachable|No route to host",
        text,
    ):
        return fetch_error(
            "offline",
            f"no network: cannot reach {where} for {what}",
            hint=f"connect to the internet, or download by hand and run `decaenv fetch --from <file>`{tail}",
        )
    if isinstance(exc, requests.exceptions.ConnectionError) and "Connection refused" in text:
        return fetch_error("network", f"{where} refused the connection for {what}", hint=f"retry later{tail}")
    return fetch_error(
        "network", f"network error while fetching {what} from {where}: {_short(text)}", hint=f"retry later{tail}"
    )


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

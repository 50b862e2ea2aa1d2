"""What a payload really is, from its first bytes: the file, or an HTML page / LFS pointer posing as it."""

from __future__ import annotations

from decaenv._typing import StrPath

HEAD_BYTES = 4096

_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title", b"<script", b"<form")


def read_head(path: StrPath, n: int = HEAD_BYTES) -> bytes:
    """The first `n` bytes of a file (fewer if it is shorter)."""
    with open(path, "rb") as fh:
        return fh.read(n)


def sniff(head: bytes) -> str:
    """Content kind of a payload from its first bytes.

    Returns:
        one of "empty", "html", "zip", "gzip", "tar", "npy", "pickle", "png", "jpeg", "lfs-pointer",
        "text", "binary".
    """
    if not head:
        return "empty"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if head.startswith(b"version https://git-lfs"):
        return "lfs-pointer"
    if is_html(head):
        return "html"
    sample = head[:1024]
    if b"\x00" in sample:
        return "binary"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return "text"


def is_html(head: bytes, content_type: str = "") -> bool:
    """True when a payload is an HTML page (by Content-Type or by its opening tags)."""
    if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    text = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(_HTML_STARTS):
        return True
    return text.startswith((b"<?xml", b"<!--")) and b"<html" in head[:4096].lower()


#: What each validator kind expects the payload to start as (None: any non-HTML content).
EXPECTED_KIND = {
    "deca-checkpoint": ("zip", "pickle"),
    "flame-model": ("pickle",),
    "npy-array": ("npy",),
    "npy-dict": ("npy",),
    "dense-template": ("npy",),
    "npz-keys": ("zip",),
    "obj-mesh": ("text",),
    "torch-state-dict": ("zip", "pickle"),
    "torchscript": ("zip",),
}


def describe_kind(kind: str) -> str:
    """Human name of a sniffed kind, for messages."""
    return {
        "html": "an HTML page",
        "zip": "a zip archive",
        "gzip": "a gzip file",
        "tar": "a tar archive",
        "npy": "a NumPy .npy file",
        "pickle": "a Python pickle",
        "png": "a PNG image",
        "jpeg": "a JPEG image",
        "lfs-pointer": "a git-lfs pointer (the LFS object was never downloaded)",
        "empty": "an empty file",
        "text": "a text file",
        "binary": "binary data",
    }.get(kind, kind)

"""Stream an HTTP body into a file while hashing it, with the three costs overlapped.

Reading the socket, writing the file and sha256 each cost about as much as the others on a fast link.
All three release the GIL, so the body is read into a ring of reusable buffers (no per-chunk
allocation), written by the reading thread and hashed by a worker thread; the worker is always drained
before returning, so the hash covers exactly the bytes on disk even when the transfer fails midway.
Responses with a transfer encoding other than identity fall back to `iter_content` (same contract).
"""

from __future__ import annotations

import http.client
import os
import queue
import socket
import threading
from typing import Callable, Optional

BUFFERS = 6
WRITEBACK_EVERY = 8 << 20  # start writeback and drop written pages every 8 MiB (see `_Writeback`; measured
# in docs/BENCHMARKS.md: 64 MiB left bursts the disk had to catch up with, 8 MiB keeps it streaming)


class Interrupted(Exception):
    """The body stopped early (connection reset, timeout, short read): retry/resume; `timeout` tells which."""

    def __init__(self, reason: BaseException, timeout: bool = False):
        super().__init__(str(reason) or type(reason).__name__)
        self.reason, self.timeout = reason, timeout


class _Hasher:
    """A worker thread feeding buffers to a hash object; buffers come back through `free`."""

    def __init__(self, hasher, size: int):
        self.hasher = hasher
        self.free: "queue.Queue[bytearray]" = queue.Queue()
        self.full: "queue.Queue" = queue.Queue()
        for _ in range(BUFFERS):
            self.free.put(bytearray(size))
        self.thread = threading.Thread(target=self._run, name="decaenv-sha256", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.full.get()
            if item is None:
                return
            buf, n = item
            self.hasher.update(memoryview(buf)[:n])
            self.free.put(buf)

    def close(self) -> None:
        self.full.put(None)
        self.thread.join()


class _Writeback:
    """Every `WRITEBACK_EVERY` bytes, ask the kernel to start writing the file out and to drop the pages
    already on disk (POSIX_FADV_DONTNEED). A big download then neither fills the page cache (which made
    plain writes stall on reclaim here: 0.5 s vs up to 2.6 s per GB) nor leaves a long fsync for the
    install step (0.02 s instead of 0.3–0.5 s per GB). No-op where posix_fadvise does not exist."""

    def __init__(self, fd: int):
        self.fd, self.pending = fd, 0
        self.enabled = hasattr(os, "posix_fadvise") and hasattr(os, "POSIX_FADV_DONTNEED")

    def add(self, n: int) -> None:
        self.pending += n
        if self.enabled and self.pending >= WRITEBACK_EVERY:
            self.pending = 0
            try:
                os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
            except OSError:
                self.enabled = False


def _fast_source(resp):
    """The raw `http.client.HTTPResponse` under a requests response, when readinto is safe on it."""
    raw = getattr(resp, "raw", None)
    fp = getattr(raw, "_fp", None)
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if isinstance(fp, http.client.HTTPResponse) and encoding in ("", "identity"):
        return fp
    return None


def _read_errors():
    import requests
    import urllib3

    return (http.client.IncompleteRead, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError,
            urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError)


def stream_body(resp, path, hasher, *, chunk_size: int, on_first: Optional[Callable[[bytes], None]] = None,
                on_bytes: Optional[Callable[[int], None]] = None) -> int:
    """Append `resp`'s body to `path`, feeding `hasher`; returns the bytes written.

    Args:
        on_first: called with the first chunk before it is written (may raise to refuse the payload).
        on_bytes: called with each chunk's size after it is written (progress).

    Raises:
        Interrupted: the connection failed or timed out while reading (the bytes before are on disk
            and in the hash).
    """
    source = _fast_source(resp)
    if source is None:
        return _stream_slow(resp, path, hasher, chunk_size, on_first, on_bytes)
    errors = _read_errors()
    worker = _Hasher(hasher, chunk_size)
    got = 0
    try:
        with open(path, "ab", buffering=0) as out:
            writeback = _Writeback(out.fileno())
            while True:
                buf = worker.free.get()
                try:
                    n = source.readinto(buf)
                except errors as exc:
                    worker.free.put(buf)
                    raise Interrupted(exc, timeout=isinstance(exc, (socket.timeout, TimeoutError))) from None
                if not n:
                    worker.free.put(buf)
                    break
                view = memoryview(buf)[:n]
                if on_first is not None:
                    on_first(bytes(view))
                    on_first = None
                _write_all(out, view)
                writeback.add(n)
                worker.full.put((buf, n))
                got += n
                if on_bytes is not None:
                    on_bytes(n)
    finally:
        worker.close()
    return got


def _write_all(out, view: memoryview) -> None:
    while view:
        written = out.write(view)
        view = view[written:]


def _stream_slow(resp, path, hasher, chunk_size, on_first, on_bytes) -> int:
    errors = _read_errors()
    got = 0
    chunks = resp.iter_content(chunk_size=chunk_size)
    with open(path, "ab") as out:
        while True:
            try:
                chunk = next(chunks, None)
            except errors as exc:
                import requests

                raise Interrupted(exc, timeout=isinstance(exc, (requests.exceptions.Timeout, socket.timeout,
                                                                 TimeoutError))) from None
            if not chunk:
                if chunk is None:
                    break
                continue
            if on_first is not None:
                on_first(chunk)
                on_first = None
            out.write(chunk)
            hasher.update(chunk)
            got += len(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return got

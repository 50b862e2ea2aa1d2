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
import time
from typing import Callable, Optional

BUFFERS = 6
WRITEBACK_EVERY = 8 << 20  # start writeback and drop written pages every 8 MiB (see `_Writeback`; measured
# in docs/BENCHMARKS.md: 64 MiB left bursts the disk had to catch up with, 8 MiB keeps it streaming)


class Interrupted(Exception):
    """The body stopped early (connection reset, timeout, short read, too slow): retry/resume; `timeout` and
    `slow` tell which."""

    def __init__(self, reason: BaseException, timeout: bool = False, slow: bool = False):
        super().__init__(str(reason) or type(reason).__name__)
        self.reason, self.timeout, self.slow = reason, timeout, slow


class TooSlow(Exception):
    """The body arrived slower than the minimum rate over the window, or past the attempt's deadline."""

    def __init__(self, text: str):
        super().__init__(text)


class RateGuard:
    """curl's `--speed-limit`/`--speed-time` plus an overall deadline, checked after every socket read.

    Args:
        min_rate: bytes per second the transfer must keep up over each `window` seconds (0: no minimum).
        window: seconds over which the rate is measured.
        deadline: seconds the whole attempt may take (None: no deadline).
        clock: time source (tests).
    """

    def __init__(
        self,
        min_rate: float = 0.0,
        window: float = 60.0,
        deadline: Optional[float] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.min_rate, self.window, self.clock = min_rate, window, clock
        self.start = self.mark = clock()
        self.deadline = None if deadline is None else self.start + deadline
        self.total = self.mark_total = 0

    def update(self, n: int) -> None:
        """Count `n` more bytes; raise `TooSlow` when the rate or the deadline is broken."""
        self.total += n
        now = self.clock()
        if self.deadline is not None and now > self.deadline:
            raise TooSlow(
                f"the attempt passed its deadline of {self.deadline - self.start:.0f} s ({self.total:,} bytes received)"
            )
        if self.min_rate and now - self.mark >= self.window:
            rate = (self.total - self.mark_total) / (now - self.mark)
            if rate < self.min_rate:
                raise TooSlow(
                    f"only {rate:,.1f} bytes/s over the last {now - self.mark:.0f} s (minimum "
                    f"{self.min_rate:,.0f} bytes/s)"
                )
            self.mark, self.mark_total = now, self.total


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

    return (
        http.client.IncompleteRead,
        http.client.HTTPException,
        ConnectionError,
        socket.timeout,
        TimeoutError,
        urllib3.exceptions.HTTPError,
        requests.exceptions.RequestException,
        OSError,
    )


def _read_some(source: http.client.HTTPResponse, view: memoryview) -> int:
    """`HTTPResponse.readinto` with at most one socket read: it returns what has arrived instead of
    blocking until the whole buffer is full (a trickling server would otherwise hold it forever)."""
    if source.chunked or source.fp is None:
        return source.readinto(view)
    if source.length is not None:
        view = view[: source.length]
    n = source.fp.readinto1(view)
    if not n and len(view):
        source._close_conn()  # type: ignore[attr-defined]  # private, not in typeshed
    elif source.length is not None:
        source.length -= n
        if not source.length:
            source._close_conn()  # type: ignore[attr-defined]  # private, not in typeshed
    return n


def _fill(source, buf: bytearray, guard: RateGuard) -> int:
    """Fill `buf` from the body (socket read by socket read, each checked by `guard`); 0 at the end."""
    view = memoryview(buf)
    filled = 0
    while filled < len(view):
        n = _read_some(source, view[filled:])
        if not n:
            break
        filled += n
        guard.update(n)
    return filled


def stream_body(
    resp,
    path,
    hasher,
    *,
    chunk_size: int,
    on_first: Optional[Callable[[bytes], None]] = None,
    on_bytes: Optional[Callable[[int], None]] = None,
    guard: Optional[RateGuard] = None,
) -> int:
    """Append `resp`'s body to `path`, feeding `hasher`; returns the bytes written.

    Args:
        on_first: called with the first chunk before it is written (may raise to refuse the payload).
        on_bytes: called with each chunk's size after it is written (progress).
        guard: minimum rate and deadline (None: neither).

    Raises:
        Interrupted: the connection failed or timed out while reading, or broke the guard's minimum rate or
            deadline (`slow`); the bytes before are on disk and in the hash.
    """
    guard = guard or RateGuard()
    source = _fast_source(resp)
    if source is None:
        return _stream_slow(resp, path, hasher, chunk_size, on_first, on_bytes, guard)
    errors = _read_errors()
    worker = _Hasher(hasher, chunk_size)
    got = 0
    try:
        with open(path, "ab", buffering=0) as out:
            writeback = _Writeback(out.fileno())
            while True:
                buf = worker.free.get()
                try:
                    n = _fill(source, buf, guard)
                except TooSlow as exc:
                    worker.free.put(buf)
                    raise Interrupted(exc, slow=True) from None
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


def _stream_slow(resp, path, hasher, chunk_size, on_first, on_bytes, guard: RateGuard) -> int:
    errors = _read_errors()
    got = 0
    chunks = resp.iter_content(chunk_size=min(chunk_size, 1 << 16))
    with open(path, "ab") as out:
        while True:
            try:
                chunk = next(chunks, None)
                guard.update(len(chunk or b""))
            except TooSlow as exc:
                raise Interrupted(exc, slow=True) from None
            except errors as exc:
                import requests

                raise Interrupted(
                    exc, timeout=isinstance(exc, (requests.exceptions.Timeout, socket.timeout, TimeoutError))
                ) from None
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

"""Per-file fetch locks: concurrent fetchers of one file wait for each other; a dead holder's lock (even one
killed with `kill -9`) is taken over. The lock is decaenv's one inter-process lock, `decaenv._process.
ProcessLock`; this module names the lock file (`<data>/.decaenv/run/<id>.lock`) and turns a timeout into
the fetch error `locked`."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Callable, Iterator, Optional

from decaenv._process import LockBusy, ProcessLock

log = logging.getLogger("decaenv.fetch")


@contextlib.contextmanager
def file_lock(run_dir: Path, key: str, *, on_wait: Optional[Callable[[str], None]] = None,
              timeout: Optional[float] = None) -> Iterator[dict]:
    """Hold the lock for `key` (an entry id) while the block runs.

    Args:
        run_dir: folder of the lock files (`<data>/.decaenv/run`).
        key: what is locked.
        on_wait: called with a one-line message when the lock is busy (and every 10 s while waiting).
        timeout: give up after this many seconds (None: wait as long as the holder lives).

    Yields:
        info dict: {"waited": seconds, "took_over": the lock content of a dead holder, or None}.

    Raises:
        FetchError (code "locked"): the timeout passed while a live process held the lock.
    """
    from decaenv.fetch.errors import fetch_error

    lock = ProcessLock(Path(run_dir) / f"{key}.lock", timeout, purpose=f"fetching {key}", on_wait=on_wait)
    try:
        lock.acquire()
    except LockBusy as exc:
        raise fetch_error("locked", f"{key} is locked by {exc.holder}",
                   hint="wait for it to finish, or stop that process") from None
    if lock.took_over is not None:
        log.info("took over the lock of %s, which its dead holder left behind (%s)", key, lock.took_over)
    try:
        yield {"waited": lock.waited, "took_over": lock.took_over}
    finally:
        lock.release()

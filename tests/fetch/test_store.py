"""The data-dir store: partial files and who may take them over, quarantine, install, the lock file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from decaenv.fetch.hashes import HashCache
from decaenv.fetch.records import LockFile
from decaenv.fetch.store import Store, hostname


def _partial(root, name, host, pid, data=b"abc", source="https:u"):
    part = root / f".{name}.{host}.{pid}.cafe0001.part"
    part.write_bytes(data)
    (root / (part.name + ".json")).write_text(json.dumps({"source": source, "dest": name}))
    return part


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_adopts_the_partial_of_a_dead_process(tmp_path):
    store = Store(tmp_path)
    _partial(tmp_path, "f.bin", hostname(), _dead_pid(), b"x" * 10)
    staging = store.adopt_partial(tmp_path / "f.bin", "https:u")
    assert staging is not None and staging.size() == 10 and f".{os.getpid()}." in staging.path.name
    assert staging.meta["source"] == "https:u" and len(store.partials(tmp_path / "f.bin")) == 1


def test_leaves_a_live_process_alone(tmp_path):
    store = Store(tmp_path)
    live = _partial(tmp_path, "f.bin", hostname(), os.getppid())
    assert store.adopt_partial(tmp_path / "f.bin", "https:u") is None and live.exists()


def test_other_source_and_other_files(tmp_path):
    store = Store(tmp_path)
    other_source = _partial(tmp_path, "f.bin", hostname(), _dead_pid(), source="gdrive:x")
    not_ours = tmp_path / ".f.bin.bak.h.1.cafe.part"
    not_ours.write_bytes(b"keep")
    assert store.adopt_partial(tmp_path / "f.bin", "https:u") is None
    assert not other_source.exists() and not_ours.exists()


def test_foreign_host_partials_wait_a_day(tmp_path):
    store = Store(tmp_path)
    part = _partial(tmp_path, "f.bin", "otherhost", 123)
    assert store.adopt_partial(tmp_path / "f.bin", "https:u") is None and part.exists()
    old = time.time() - 2 * 86400
    os.utime(part, (old, old))
    assert store.adopt_partial(tmp_path / "f.bin", "https:u").size() == 3


def test_quarantine_and_install(tmp_path):
    store = Store(tmp_path)
    store.ensure()
    staging = store.new_staging(tmp_path / "f.bin", source="s")
    staging.path.write_bytes(b"good")
    store.install(staging.path, tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == b"good" and not staging.path.exists()
    bad = tmp_path / "bad"
    bad.write_bytes(b"evil")
    where = store.quarantine(bad, "f.bin", "hash-mismatch")
    assert where.parent == tmp_path / ".decaenv" / "quarantine" and where.read_bytes() == b"evil"


def test_ensure_needs_the_parent(tmp_path):
    import pytest

    from decaenv.errors import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        Store(tmp_path / "a" / "b").ensure()
    Store(tmp_path / "a" / "b").ensure(create_parents=True)
    assert (tmp_path / "a" / "b" / ".decaenv" / "run").is_dir()


def test_lockfile_roundtrip(tmp_path):
    lock = LockFile(tmp_path)
    assert lock.get("x") is None
    lock.record("x", dest="x.bin", size=3, sha256="ab" * 32, trust="first-use", source="s")
    assert lock.get("x")["trust"] == "first-use" and lock.forget("x") and lock.get("x") is None


def test_hash_cache_tolerates_garbage(tmp_path):
    path = tmp_path / "cache.json"
    path.write_text("{not json")
    cache = HashCache(path)
    target = tmp_path / "f"
    target.write_bytes(b"1")
    assert cache.lookup(target, target.stat()) is None
    cache.store(target, target.stat(), "00" * 32)
    assert cache.lookup(target, target.stat())["sha256"] == "00" * 32

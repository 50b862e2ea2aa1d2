"""The status object shared with the doctor: every status, the hash cache, trust on first use."""

from __future__ import annotations

import os
import time

import pytest
from _support.fetch_server import sha, write_manifest

from decaenv.fetch import verify as verify_all
from decaenv.fetch.hashes import HashCache, file_sha256
from decaenv.fetch.manifest import load_manifest
from decaenv.fetch.records import LockFile
from decaenv.fetch.status import STATUSES, verify_entry


@pytest.fixture
def entry(tmp_path):
    data = b"x" * 1000
    manifest = write_manifest(
        tmp_path / "m.toml",
        [
            {
                "id": "known",
                "dest": "known.bin",
                "sha256": sha(data),
                "size": len(data),
                "sources": [{"kind": "https", "url": "https://example.org/known.bin"}],
            },
            {
                "id": "tofu",
                "dest": "sub/tofu.npy",
                "validate": {"kind": "npy-array", "shape": [2]},
                "sources": [{"kind": "https", "url": "https://example.org/tofu.npy"}],
            },
        ],
    )
    return load_manifest(manifest), data


def test_every_status(tmp_path, entry):
    manifest, data = entry
    known, tofu = manifest.get("known"), manifest.get("tofu")
    root = tmp_path / "data"
    root.mkdir()
    assert verify_entry(known, root).status == "missing"
    (root / "known.bin").write_bytes(data)
    assert verify_entry(known, root, level="stat").status == "present"
    assert verify_entry(known, root).status == "verified"
    (root / "known.bin").write_bytes(data + b"!")
    st = verify_entry(known, root)
    assert st.status == "size-mismatch" and "decaenv fetch --force known" in st.detail
    (root / "known.bin").write_bytes(b"y" * 1000)
    st = verify_entry(known, root)
    assert st.status == "hash-mismatch" and st.expected_sha256 == known.sha256 and not st.ok
    np = pytest.importorskip("numpy")
    (root / "sub").mkdir()
    np.save(root / "sub" / "tofu.npy", np.zeros(3))
    st = verify_entry(tofu, root, level="content")
    assert st.status == "invalid" and "shape (3,), expected (2,)" in st.detail
    np.save(root / "sub" / "tofu.npy", np.zeros(2))
    st = verify_entry(tofu, root, level="content")
    assert st.status == "hash-unknown" and st.usable and st.content == "array <f8 (2,)"
    LockFile(root).record("tofu", dest=tofu.dest, size=st.size, sha256=st.sha256, trust="first-use", source="t")
    st = verify_entry(tofu, root)
    assert st.status == "verified" and st.hash_source == "first-use"
    assert set(STATUSES) == {
        "verified",
        "present",
        "missing",
        "size-mismatch",
        "hash-mismatch",
        "hash-unknown",
        "invalid",
    }
    assert st.to_json()["status"] == "verified"


def test_hash_cache_keyed_by_file_identity(tmp_path, entry):
    manifest, data = entry
    known = manifest.get("known")
    root = tmp_path / "data"
    root.mkdir()
    path = root / "known.bin"
    path.write_bytes(data)
    cache = HashCache(tmp_path / "cache.json")
    first = verify_entry(known, root, cache=cache)
    second = verify_entry(known, root, cache=cache)
    assert (first.cached, second.cached) == (False, True) and second.ok
    assert verify_entry(known, root, cache=cache, rehash=True).cached is False
    path.write_bytes(b"z" * 1000)  # same size, new content and mtime: the cache must not answer
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**6))
    assert verify_entry(known, root, cache=cache).status == "hash-mismatch"


def test_cached_verification_is_fast(tmp_path, procedural_data_dir):
    """Re-verifying the 214 MB synthetic checkpoint comes from the cache (no re-read)."""
    deca = load_manifest().get("deca-model")
    cache = HashCache(tmp_path / "cache.json")
    verify_entry(deca, procedural_data_dir, cache=cache, level="content")
    start = time.perf_counter()
    st = verify_entry(deca, procedural_data_dir, cache=cache, level="content")
    assert st.cached and st.content.startswith("checkpoint") and time.perf_counter() - start < 0.5


def test_verify_all_for_the_doctor(tmp_path, shared_assets):
    statuses = {s.id: s for s in verify_all(shared_assets / "deca-data")}
    assert statuses["head-template"].ok and statuses["deca-model"].status == "missing"
    assert len(statuses) == len(load_manifest().entries)


def test_file_sha256_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "f"
    data = os.urandom(9 << 20)
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_verify_entry_imports_nothing_heavy(tmp_path):
    import subprocess
    import sys

    code = (
        "from decaenv.fetch import load_manifest, verify_entry\n"
        f"verify_entry(load_manifest().get('head-template'), {str(tmp_path)!r})\n"
        "import sys\nprint(' '.join(sys.modules))"
    )
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not loaded & {"numpy", "torch", "rich", "requests", "gdown"}

"""Every failure is a one-line exit 1 naming the path, with nothing half-written left behind: a full disk
(`ulimit -f` and ENOSPC), a read-only data dir, malformed state files, a name too long, `kill -9` mid-extraction."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _support.faults import run_fetch, send_bytes, write_manifest

from decaenv.cli import main


def _manifest(tmp_path: Path, loopback, names=("blob.bin", )) -> Path:
    return write_manifest(tmp_path / "m.toml", [
        {"id": name.split(".")[0], "dest": name, "sources": [{"kind": "https", "url": loopback.url(f"/{name}")}]}
        for name in names])


def _leftovers(data: Path):
    return sorted(p.name for p in data.rglob("*") if p.name.endswith((".tmp", ".partial")))


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("decaenv: error:")]
    assert len(lines) >= 1 and "internal error" not in err and "Traceback" not in err, err
    return lines[0]


def test_file_size_limit_mid_transfer(loopback, tmp_path):
    """`ulimit -f` (EFBIG) during a download: exit 1, the path named, the partial kept for resuming."""
    loopback.routes["/blob.bin"] = send_bytes(os.urandom(3 << 20))
    manifest = _manifest(tmp_path, loopback)
    data = tmp_path / "data"
    data.mkdir()
    limit = 1 << 20
    run = subprocess.run([sys.executable, "-m", "decaenv", "--data-dir", str(data), "-q", "fetch", "--accept-license"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, DECAENV_MANIFEST=str(manifest), DECAENV_FETCH_RETRIES="0"),
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert run.returncode == 1, run.stderr
    line = _one_error_line(run.stderr)
    assert "EFBIG" in line and ".part" in line
    assert _leftovers(data) == [] and not (data / "blob.bin").exists()
    (result,) = run_fetch(manifest, data)  # the next run, with room, resumes and finishes
    assert result.ok and result.action == "resumed"


def test_disk_full_mid_transfer_leaves_no_temp_files(loopback, tmp_path, monkeypatch, capsys):
    loopback.routes["/blob.bin"] = send_bytes(os.urandom(2 << 20))
    loopback.routes["/other.bin"] = send_bytes(b"small")
    manifest = _manifest(tmp_path, loopback, ("blob.bin", "other.bin"))
    data = tmp_path / "data"
    data.mkdir()
    from decaenv.fetch import store, stream

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(stream, "_write_all", full)
    real_write = store.write_private
    monkeypatch.setattr(store, "write_private", lambda path, data: full() if path.name.endswith(".json.tmp")
                        and "blob" in path.name else real_write(path, data))
    monkeypatch.setenv("DECAENV_MANIFEST", str(manifest))
    code = main(["--data-dir", str(data), "-q", "fetch", "--accept-license"])
    err = capsys.readouterr().err
    assert code == 1
    assert "no space left on the device (ENOSPC)" in _one_error_line(err)
    assert _leftovers(data) == []


@pytest.fixture
def read_only(monkeypatch):
    """Make every write under a folder fail with EROFS (as a read-only mount would; root ignores chmod)."""
    roots = []
    real_open, real_mkdir = os.open, Path.mkdir

    def guarded(path) -> bool:
        return any(str(os.path.abspath(path)).startswith(str(r)) for r in roots)

    def fake_open(path, flags, mode=0o777, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and guarded(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, mode, *args, **kwargs)

    def fake_mkdir(self, *args, **kwargs):
        if guarded(self) and not self.exists():
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(Path, "mkdir", fake_mkdir)
    return roots


def test_read_only_data_dir_plain_fetch(loopback, tmp_path, read_only, monkeypatch, capsys):
    loopback.routes["/blob.bin"] = send_bytes(b"payload")
    monkeypatch.setenv("DECAENV_MANIFEST", str(_manifest(tmp_path, loopback)))
    data = tmp_path / "data"
    data.mkdir()
    read_only.append(data)
    code = main(["--data-dir", str(data), "-q", "fetch", "--accept-license"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 1 and "read-only (EROFS)" in line and str(data) in line


def test_read_only_data_dir_force_over_a_full_dir(loopback, tmp_path, read_only, monkeypatch, capsys):
    loopback.routes["/blob.bin"] = send_bytes(b"payload")
    manifest = _manifest(tmp_path, loopback)
    data = tmp_path / "data"
    assert run_fetch(manifest, data)[0].ok
    read_only.append(data)
    monkeypatch.setenv("DECAENV_MANIFEST", str(manifest))
    code = main(["--data-dir", str(data), "-q", "fetch", "--force", "--accept-license"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 1 and "read-only (EROFS)" in line and (data / "blob.bin").read_bytes() == b"payload"


@pytest.mark.parametrize("where,content", [
    ("cache", {"version": 1, "files": {"<blob>": "a string, not a record"}}),
    ("cache", {"version": 1, "files": ["a", "list"]}),
    ("lockfile", {"version": 1, "files": ["a", "list"]}),
    ("lockfile", {"version": 1, "files": {"blob": {"sha256": 5, "size": "big"}}}),
    ("licenses", {"version": 1, "accepted": ["test"]}),
    ("licenses", [1, 2, 3]),  # already handled before this suite: kept as coverage
])
def test_malformed_state_is_treated_as_absent(loopback, tmp_path, monkeypatch, capsys, caplog, _isolated_home, where, content):
    loopback.routes["/blob.bin"] = send_bytes(b"payload")
    monkeypatch.setenv("DECAENV_MANIFEST", str(_manifest(tmp_path, loopback)))
    data = tmp_path / "data"
    (data / ".decaenv").mkdir(parents=True)
    path = {"cache": _isolated_home / "cache" / "file-hashes.json", "lockfile": data / ".decaenv" / "lockfile.json",
            "licenses": data / ".decaenv" / "licenses.json"}[where]
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(content).replace("<blob>", os.path.realpath(data / "blob.bin"))
    path.write_text(text)
    if where == "cache":  # the file must exist for its (malformed) record to be read
        assert main(["--data-dir", str(data), "-q", "fetch", "--accept-license"]) == 0
        path.write_text(text)
    assert main(["--data-dir", str(data), "fetch", "--list"]) == 0
    assert main(["--data-dir", str(data), "-q", "fetch", "--accept-license"]) == 0
    assert main(["--data-dir", str(data), "fetch", "--verify"]) == 0
    err = capsys.readouterr().err
    assert "internal error" not in err
    warnings = [r for r in caplog.records if "malformed" in r.getMessage() and str(path) in r.getMessage()]
    assert len(warnings) <= 1


def test_doctor_results_cache_entry_that_is_a_string(tmp_path):
    from decaenv.doctor.cache import ResultCache

    path = tmp_path / "results-v1.json"
    path.write_text(json.dumps({"format": 1, "checks": {"python": "garbage", "torch": ["x"]}}))
    cache = ResultCache(path)

    class Item:
        id = "python"

    assert cache.get(Item(), "key") is None


def test_name_too_long_is_one_line(tmp_path, capsys):
    long_dir = tmp_path / ("x" * 300)
    for argv in (["--data-dir", str(long_dir), "fetch", "--list"],
                 ["--data-dir", str(tmp_path), "fetch", "--from", str(long_dir / "generic_model.pkl")]):
        code = main(argv)
        line = _one_error_line(capsys.readouterr().err)
        assert code == 1 and "ENAMETOOLONG" in line, line


def test_kill_9_during_extraction_is_swept_on_the_next_run(tmp_path):
    """A process killed (SIGKILL) while extracting a member leaves its partial and metadata; the next run
    on the data dir removes them (they cannot be resumed)."""
    import zipfile

    archive = tmp_path / "FLAME2020.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("FLAME2020/generic_model.pkl", os.urandom(4 << 20))
    manifest = write_manifest(tmp_path / "m.toml", [
        {"id": "flame", "dest": "generic_model.pkl", "sources": [
            {"kind": "https", "url": "https://example.org/x", "archive": "FLAME2020.zip",
             "member": "FLAME2020/generic_model.pkl"}]}])
    data = tmp_path / "data"
    data.mkdir()
    child = ("import sys, time\n"
             "from decaenv.fetch import processors\n"
             "real = processors.Archive.extract\n"
             "def slow(self, name, target, **kw):\n"
             "    open(target, 'wb').write(b'half of it')\n"
             "    print('extracting', flush=True)\n"
             "    time.sleep(60)\n"
             "processors.Archive.extract = slow\n"
             "from decaenv.fetch import import_files, load_manifest\n"
             f"import_files({str(data)!r}, [{str(archive)!r}], manifest=load_manifest({str(manifest)!r}))\n")
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "extracting"
        stale = sorted(p.name for p in data.iterdir() if ".part" in p.name)
        assert any(n.endswith(".part") for n in stale) and any(n.endswith(".part.json") for n in stale)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    (data / ".x.part.json.tmp").write_text("{}")  # not ours (no pid in the name): left alone
    from decaenv.fetch.store import Store

    Store(data).ensure()
    assert sorted(p.name for p in data.iterdir() if ".part" in p.name) == [".x.part.json.tmp"]

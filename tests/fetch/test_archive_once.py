"""Entries whose members come from the same archive (facenet-pytorch's wheel holds all three MTCNN files) are
served by one download per fetch run: the archive is kept while the run goes and removed when it ends."""

from __future__ import annotations

import hashlib

from _support.fetch_server import Payload, write_manifest, zip_bytes

MEMBERS = {"pkg/a.bin": b"first member " * 300, "pkg/b.bin": b"second member " * 200, "pkg/c.bin": b"third " * 90}


def _manifest(tmp_path, server, with_missing: bool = False):
    files = []
    for name in ("a", "b", "c") + (("missing",) if with_missing else ()):
        member = f"pkg/{name}.bin"
        data = MEMBERS.get(member)
        spec = {"id": f"part-{name}", "dest": f"parts/{name}.bin"}
        if data is not None:
            spec["sha256"] = hashlib.sha256(data).hexdigest()
        spec["sources"] = [{"kind": "https", "url": server.url("pkg.zip"), "archive": "pkg.zip", "member": member}]
        files.append(spec)
    return write_manifest(tmp_path / "m.toml", files)


def _leftovers(data_dir):
    return sorted(
        p.relative_to(data_dir).as_posix()
        for p in data_dir.rglob("*")
        if p.is_file() and ".decaenv" not in p.parts and not p.name.endswith(".bin")
    )


def test_one_download_serves_every_member(server, tmp_path, run_fetch):
    server.files["pkg.zip"] = Payload(zip_bytes(MEMBERS))
    out = run_fetch(_manifest(tmp_path, server))
    for name in ("a", "b", "c"):
        result = out.one(f"part-{name}")
        assert result.error is None and result.status.ok, name
        assert (out.data_dir / "parts" / f"{name}.bin").read_bytes() == MEMBERS[f"pkg/{name}.bin"]
    assert len(server.requests("/files/pkg.zip")) == 1
    assert any("downloaded once in this run" in note for note in out.one("part-c").notes)
    assert _leftovers(out.data_dir) == []  # the kept archive is gone when the run ends


def test_a_missing_member_fails_alone_and_nothing_is_left(server, tmp_path, run_fetch):
    server.files["pkg.zip"] = Payload(zip_bytes(MEMBERS))
    out = run_fetch(_manifest(tmp_path, server, with_missing=True))
    assert all(out.one(f"part-{n}").error is None for n in ("a", "b", "c"))
    assert out.code("part-missing") == "member-missing"
    assert _leftovers(out.data_dir) == []

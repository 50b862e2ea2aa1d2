"""`decaenv cache list|clean`: sizes per kind, selective cleaning, partials in use kept, data files never touched."""

from __future__ import annotations

import json
import os
import time

import pytest

from decaenv import paths
from decaenv.cli import main
from decaenv.fetch.store import hostname

DEAD_PID = 2**22 + 12345  # above Linux's pid_max default: no such process


@pytest.fixture
def kept(tmp_path):
    """A cache dir and a data dir holding one of everything decaenv keeps; returns the data dir."""
    cache = paths.cache_dir()
    (cache / "build" / "py3.11-torch2-cpu").mkdir(parents=True)
    (cache / "build" / "py3.11-torch2-cpu" / "decaenv_rasterizer.so").write_bytes(b"x" * 3000)
    (cache / "doctor").mkdir()
    (cache / "doctor" / "results-v1.json").write_text("{}")
    (cache / "file-hashes.json").write_text("{}")
    data = tmp_path / "data"
    (data / ".decaenv" / "quarantine").mkdir(parents=True)
    (data / "deca_model.tar").write_bytes(b"m" * 5000)  # an installed file: never removable
    (data / ".decaenv" / "lockfile.json").write_text("{}")
    (data / ".decaenv" / "quarantine" / "deca_model.tar.html-page.1").write_bytes(b"<html>" * 100)
    host = hostname()
    stale = data / f".deca_model.tar.{host}.{DEAD_PID}.abcd1234.part"
    stale.write_bytes(b"p" * 700)
    stale.with_name(stale.name + ".json").write_text("{}")
    (data / "mtcnn").mkdir()
    live = data / "mtcnn" / f".onet.pt.{host}.{os.getpid()}.ffff0000.part"  # this process: in use
    live.write_bytes(b"l" * 50)
    return data


def _json(capsys, *args):
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_list_counts_and_sizes(kept, capsys):
    doc = _json(capsys, "--data-dir", str(kept), "cache", "list", "--json")
    items = {i["kind"]: i for i in doc["items"]}
    assert items["builds"]["files"] == 1 and items["builds"]["bytes"] == 3000
    assert items["doctor"]["files"] == 1 and items["hashes"]["files"] == 1 and items["exec"]["files"] == 0
    assert items["partials"]["files"] == 3 and items["partials"]["bytes"] == 700 + 2 + 50
    assert len(items["partials"]["in_use"]) == 1 and items["partials"]["in_use"][0].endswith(".ffff0000.part")
    assert items["quarantine"]["files"] == 1 and items["quarantine"]["bytes"] == 600
    assert doc["data_dir_bytes"] >= 5000
    assert main(["cache", "list", "--data-dir", str(kept)]) == 0  # the text form, options after the command
    text = capsys.readouterr().out
    assert "builds" in text and "3.0 kB" in text and "(1 in use)" in text


def test_clean_only_builds(kept, capsys):
    assert main(["cache", "clean", "--builds", "--data-dir", str(kept)]) == 0
    assert "removed builds: 1 files, 3.0 kB" in capsys.readouterr().out
    assert not (paths.cache_dir() / "build").exists()
    assert (paths.cache_dir() / "doctor" / "results-v1.json").is_file()
    assert len(list(kept.rglob("*.part"))) == 2 and (kept / ".decaenv" / "quarantine").is_dir()


def test_clean_partials_keeps_the_one_in_use(kept, capsys):
    assert main(["--data-dir", str(kept), "cache", "clean", "--partials"]) == 0
    out = capsys.readouterr().out
    assert "removed partials: 2 files" in out and "kept 1 in use" in out
    assert [p.name.split(".")[1] for p in kept.rglob(".*.part")] == ["onet"]
    assert (paths.cache_dir() / "build").is_dir()


def test_foreign_partials_are_kept_for_a_day(kept, capsys):
    foreign = kept / ".generic_model.pkl.otherhost.4242.00000000.part"
    foreign.write_bytes(b"f")
    old = kept / ".head_template.obj.otherhost.4243.00000000.part"
    old.write_bytes(b"o")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    main(["--data-dir", str(kept), "cache", "clean", "--partials"])
    assert foreign.exists() and not old.exists()


def test_clean_quarantine_and_dry_run(kept, capsys):
    assert main(["--data-dir", str(kept), "cache", "clean", "--quarantine", "--dry-run"]) == 0
    assert "would remove quarantine: 1 files, 600 B" in capsys.readouterr().out
    assert (kept / ".decaenv" / "quarantine" / "deca_model.tar.html-page.1").is_file()
    assert main(["--data-dir", str(kept), "cache", "clean", "--quarantine"]) == 0
    assert not list((kept / ".decaenv" / "quarantine").iterdir())  # emptied by the store (fetch --clean)


def test_clean_everything_never_touches_data_files(kept, capsys):
    assert main(["--data-dir", str(kept), "cache", "clean"]) == 0
    out = capsys.readouterr().out
    assert "removed" in out and "in all" in out
    assert (kept / "deca_model.tar").stat().st_size == 5000
    assert (kept / ".decaenv" / "lockfile.json").is_file()
    assert not any(p.exists() for p in (paths.cache_dir() / "build", paths.cache_dir() / "file-hashes.json"))
    assert main(["--data-dir", str(kept), "cache", "clean"]) == 0  # again: only the partial in use is left
    assert capsys.readouterr().out.splitlines() == [
        "removed partials: 0 files, 0 B (%s); kept 1 in use" % kept,
        "removed 0 B in all",
    ]


def test_no_data_dir_yet(tmp_path, capsys):
    doc = _json(capsys, "--data-dir", str(tmp_path / "none"), "cache", "list", "--json")
    assert doc["data_dir"] is None and [i["kind"] for i in doc["items"]] == ["builds", "doctor", "hashes", "exec"]
    assert main(["--data-dir", str(tmp_path / "none"), "cache", "clean"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to clean"

"""Fixtures for these tests; the servers and helpers they use live in `_support.fetch_server`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import pytest
from _support.fetch_server import FakeServer, Outcome, zip_bytes


@pytest.fixture
def server():
    srv = FakeServer()
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def flame_zip(mini_flame_pickle):
    """(bytes of a FLAME2020.zip as MPI ships it: FLAME2020/generic_model.pkl (the 7 MB mini FLAME), another
    variant and the readme; the pickle's bytes). For archive mechanics: a full-size FLAME through the packaged
    manifest's DECA check is test_import.test_folder_import's."""
    pkl = mini_flame_pickle[0].read_bytes()
    return zip_bytes(
        {
            "FLAME2020/generic_model.pkl": pkl,
            "FLAME2020/female_model.pkl": pkl[:1000],
            "FLAME2020/Readme.pdf": b"%PDF-1.4 readme",
        }
    ), pkl


@pytest.fixture(scope="session")
def mini_flame_zip(mini_flame_pickle):
    """Like `flame_zip`, with a FLAME pickle of the real layout but 20 shape+expression components (7 MB): for
    transfer tests whose manifest does not ask for DECA's 350 components."""
    pkl = mini_flame_pickle[0].read_bytes()
    return zip_bytes({"FLAME2020/generic_model.pkl": pkl, "FLAME2020/Readme.pdf": b"%PDF-1.4 readme"}), pkl


@pytest.fixture(scope="session")
def mechanics_manifest(tmp_path_factory) -> Path:
    """The packaged manifest with FLAME's DECA-compatibility check (`deca = true`) off, so that the 7 MB mini
    FLAME is a valid `flame`: for tests of recognition and import mechanics (names, archives, several paths).
    The packaged check itself runs on a full-size FLAME in test_import's zip and folder imports."""
    from decaenv.fetch.manifest import packaged_manifest

    text = packaged_manifest().read_text()
    needle = 'validate = { kind = "flame-model", deca = true }'
    assert text.count(needle) == 1, "the packaged manifest's FLAME entry changed: update this fixture"
    path = tmp_path_factory.mktemp("manifest") / "deca.toml"
    path.write_text(text.replace(needle, 'validate = { kind = "flame-model", deca = false }'))
    return path


@pytest.fixture
def run_fetch(tmp_path):
    """Run the fetch engine in-process against a manifest file (licences accepted, no prompts, no real sleeps)."""

    def run(manifest_path: Path, ids=(), data_dir: Optional[Path] = None, retries: int = 3, **options) -> Outcome:
        from decaenv.fetch.engine import Fetcher, FetchOptions
        from decaenv.fetch.http import HttpOptions
        from decaenv.fetch.manifest import load_manifest

        sleeps: List[float] = []
        data_dir = data_dir or tmp_path / "data"
        data_dir.mkdir(exist_ok=True)
        http = HttpOptions(
            sleep=sleeps.append,
            retries=retries,
            read_timeout=options.pop("read_timeout", 10.0),
            chunk_size=options.pop("chunk_size", 1 << 20),
        )
        options.setdefault("accept_license", True)
        options.setdefault("interactive", False)
        man = load_manifest(manifest_path)
        results = Fetcher(man, data_dir, FetchOptions(http=http, **options)).fetch(man.select(ids, everything=not ids))
        return Outcome(results, sleeps, data_dir)

    return run

"""`decaenv selftest` command wiring."""

import json

import pytest

from decaenv.cli import main

pytestmark = pytest.mark.slow  # full-size synthetic assets through the CLI: `make test` only, not `make test-fast`


def test_make_assets_json(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.delenv("DECAENV_TEST_ASSETS", raising=False)
    code = main(["selftest", "--make-assets", str(tmp_path / "d"), "--small", "--seed", "3", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["topology"] == "procedural"
    assert {p.name for p in (tmp_path / "d").iterdir()} == set(out["files"])
    assert (tmp_path / "d" / "deca_model.tar").stat().st_size < 300e6  # --small: no optimizer state


def test_selftest_verdict_is_honest(tmp_path, capsys, monkeypatch):
    from decaenv import selftest

    monkeypatch.setattr(selftest, "_RUNNERS", {name: (lambda c, o: "fine") for name in selftest.STAGES})
    assert main(["selftest", "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "pass"

    def missing(ctx, options):
        raise selftest.StageMissing("runtime not installed")

    monkeypatch.setitem(selftest._RUNNERS, "model", missing)
    assert main(["selftest", "--out", str(tmp_path)]) == 1
    assert "fail: stage 'model' missing: runtime not installed" in capsys.readouterr().out

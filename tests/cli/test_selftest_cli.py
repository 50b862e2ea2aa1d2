"""`decaenv selftest` command wiring."""

import json

import pytest

from decaenv.cli import main
from decaenv.errors import DataError


def _saved(obj) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


pytestmark = pytest.mark.slow  # full-size synthetic assets through the CLI: `make test` only, not `make test-fast`


def test_make_assets_json(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    from decaenv.synthetic import assets, checkpoint

    monkeypatch.delenv("DECAENV_TEST_ASSETS", raising=False)
    sizes = []  # the checkpoint is measured, not written (tests/synthetic checks its bytes)
    monkeypatch.setattr(
        checkpoint,
        "write_checkpoint",
        lambda path, seed, opt: (
            sizes.append(len(_saved(checkpoint.checkpoint_dict(seed, opt)))),
            open(path, "wb").close(),
        ),
    )
    in_memory = []  # nor are the files made in memory (FLAME pickle, npy files, obj): 60 MB
    monkeypatch.setattr(assets, "_write_bytes", lambda data: lambda path: (in_memory.append(len(data)), path.touch()))
    code = main(["selftest", "--make-assets", str(tmp_path / "d"), "--small", "--seed", "3", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["topology"] == "procedural"
    assert {p.name for p in (tmp_path / "d").iterdir()} == set(out["files"])
    assert sizes and sizes[0] < 300e6  # --small: no optimizer state
    assert len(in_memory) >= 5 and min(in_memory) > 0


def test_selftest_verdict_is_honest(tmp_path, capsys, monkeypatch):
    from decaenv import selftest

    monkeypatch.setattr(selftest, "_RUNNERS", {name: (lambda c, o: "fine") for name in selftest.STAGES})
    assert main(["selftest", "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "pass"

    def failing(ctx, options):
        raise DataError("the checkpoint is truncated")

    monkeypatch.setitem(selftest._RUNNERS, "model", failing)
    assert main(["selftest", "--out", str(tmp_path)]) == 1
    assert "fail: stage 'model' fail: the checkpoint is truncated" in capsys.readouterr().out

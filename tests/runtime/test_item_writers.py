"""A batch's per-item code files written on several threads (what a `--save codes` run does beside a GPU) are
the files one thread writes, with the outcomes in input order, and the table rows the same."""

from __future__ import annotations

import json
import threading

import numpy as np
from _support.runs import codes_options, write_mixed_folder

from decaenv.runtime.pipeline import Reconstructor


def _run(deca, data_dir, folder, out, writers: int, monkeypatch):
    names = set()
    real_save = Reconstructor.save

    def save(self, *args):
        names.add(threading.current_thread().name)
        return real_save(self, *args)

    monkeypatch.setattr(Reconstructor, "_write_workers", lambda self: writers)
    monkeypatch.setattr(Reconstructor, "save", save)
    options = codes_options(data_dir, folder, out, batch_size=4, save=["codes", "table"], input_workers="threads:1")
    return Reconstructor(options, deca=deca).run(), names


def test_items_written_on_threads_equal_one_thread(deca, reconstruct_data_dir, tmp_path, monkeypatch):
    from decaenv.runtime import read_codes

    (tmp_path / "in").mkdir()
    folder = write_mixed_folder(tmp_path / "in")
    many, names = _run(deca, reconstruct_data_dir, folder, tmp_path / "many", 3, monkeypatch)
    one, one_names = _run(deca, reconstruct_data_dir, folder, tmp_path / "one", 1, monkeypatch)
    assert one_names == {"decaenv-write_0"}  # the run's writing thread
    # a batch of several items went to the item writers (a batch of one stays in the writing thread)
    assert any(n.startswith("decaenv-write-item") for n in names)
    assert many.counts == one.counts == {"ok": 4, "failed": 2}
    assert [(o.name, o.message) for o in many.items] == [(o.name, o.message) for o in one.items]  # the failures
    tables = [read_codes(tmp_path / d / "codes.parquet", status="all") for d in ("many", "one")]
    assert list(tables[0]["name"]) == list(tables[1]["name"]) and list(tables[0]["status"]) == list(tables[1]["status"])
    assert np.array_equal(tables[0]["exp"], tables[1]["exp"], equal_nan=True)  # (failed rows: NaN)
    ok = [n for n, status in zip(tables[1]["name"], tables[1]["status"]) if status == "ok"]
    assert len(ok) == 4
    for name in ok:
        with (
            np.load(tmp_path / "many" / name / f"{name}_codes.npz") as a,
            np.load(tmp_path / "one" / name / f"{name}_codes.npz") as b,
        ):
            assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
        texts = [(tmp_path / d / name / f"{name}_codes.json").read_text() for d in ("many", "one")]
        assert json.loads(texts[0]) == json.loads(texts[1])


def test_beside_an_accelerator_the_run_uses_one_torch_thread_and_gives_the_others_back(
    deca, reconstruct_data_dir, tmp_path, monkeypatch
):
    import torch

    (tmp_path / "in").mkdir()
    folder = write_mixed_folder(tmp_path / "in")
    options = codes_options(reconstruct_data_dir, folder, tmp_path / "out", batch_size=4, input_workers="threads:1")
    runner = Reconstructor(options, deca=deca)
    seen = []
    real_model = Reconstructor.run_model

    def run_model(self, prepared):
        seen.append(torch.get_num_threads())
        return real_model(self, prepared)

    monkeypatch.setattr(Reconstructor, "run_model", run_model)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert runner.run().counts == {"ok": 4, "failed": 2} and set(seen) == {2}  # on a CPU: as they were
        seen.clear()
        runner._device_name = "cuda:0"  # (the model stays on the CPU; only the policy differs)
        assert runner.run().counts == {"ok": 4, "failed": 2} and set(seen) == {1}
        assert torch.get_num_threads() == 2  # given back
    finally:
        torch.set_num_threads(before)


def test_the_tables_rows_keep_one_order_while_the_next_batch_is_prepared(
    deca, reconstruct_data_dir, tmp_path, monkeypatch
):
    """Inline, batch k + 1 is prepared (and its failures found) while the writing thread writes batch k: a failed
    item's row waits for its outcome to be reported, so the rows come in the same order however long the writing
    takes (a batch's rows, then its failures)."""
    import time

    from decaenv.runtime import read_codes

    (tmp_path / "in").mkdir()
    folder = write_mixed_folder(tmp_path / "in")  # batches of 3: p0 p1 p1b_broken | p2 p2b_noface p3
    real_save = Reconstructor.save

    def slow_first_batch(self, result, index, name, *args):
        if name in ("p0", "p1"):
            time.sleep(0.3)  # the second batch is prepared meanwhile
        return real_save(self, result, index, name, *args)

    monkeypatch.setattr(Reconstructor, "save", slow_first_batch)
    options = codes_options(
        reconstruct_data_dir, folder, tmp_path / "out", save=["codes", "table"], input_workers="threads:1"
    )
    summary = Reconstructor(options, deca=deca).run()
    assert summary.counts == {"ok": 4, "failed": 2}
    table = read_codes(tmp_path / "out" / "codes.parquet", status="all")
    assert list(zip(table["name"], table["status"])) == [
        ("p0", "ok"),
        ("p1", "ok"),
        ("p1b_broken", "failed"),
        ("p2", "ok"),
        ("p3", "ok"),
        ("p2b_noface", "failed"),
    ]

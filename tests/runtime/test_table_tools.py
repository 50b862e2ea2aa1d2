"""`decaenv table status|merge` over a dataset run's tables: a finished run, a shard still writing (rows only in
its journal), failures grouped by reason, one merged file; nothing written into the tables."""

import json

import numpy as np
import pytest

from decaenv.cli import main
from decaenv.errors import DataError, UsageError
from decaenv.runtime.table import TableWriter, make_row, read_codes
from tests._support.tables import table_row as _row

pytest.importorskip("pyarrow")


def _no_face(name):
    return make_row(name, f"/in/{name}.png", None, "failed", f"no face found in /in/{name}.png (detector mtcnn)")


@pytest.fixture
def tables(tmp_path):
    """Shard 0 finished (3 ok, 2 failed); shard 1 still running: 2 rows only in its journal."""
    done = TableWriter(tmp_path / "codes-0-of-2.parquet")
    done.add([_row("a", 1.0), _row("b", 2.0), _no_face("c"), _row("d", 4.0), _no_face("e")])
    done.close()
    running = TableWriter(tmp_path / "codes-1-of-2.parquet")
    running.add([_row("f", 6.0), make_row("g", "/in/g.png", None, "failed", "image /in/g.png is a text file")])
    yield tmp_path
    running._sink.close()


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_status_counts_every_shard_while_one_still_writes(tables, capsys):
    before = _snapshot(tables)
    assert main(["table", "status", str(tables), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    by_name = {t["path"].rsplit("/", 1)[1]: t for t in status["tables"]}
    assert (by_name["codes-0-of-2.parquet"]["ok"], by_name["codes-0-of-2.parquet"]["failed"]) == (3, 2)
    assert by_name["codes-1-of-2.parquet"] == dict(by_name["codes-1-of-2.parquet"], ok=1, failed=1, journaled=2)
    assert (status["ok"], status["failed"], status["journaled"]) == (4, 3, 2)
    assert status["failures"][0] == {"count": 2, "reason": "no face found in <source> (detector mtcnn)"}
    assert status["missing_shards"] == [] and status["rows_of_items_in_several_tables"] == 0
    assert main(["table", "status", str(tables)]) == 0
    text = capsys.readouterr().out
    assert "2 in its journal" in text and "total: 7 rows in 2 table(s): ok 4, failed 3" in text
    assert _snapshot(tables) == before  # nothing written, the journal left for its run


def test_merge_writes_one_file_equal_to_the_folder(tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged") / "all.parquet"
    assert main(["table", "merge", str(tables), "-o", str(out)]) == 0
    merged, folder = read_codes(out, status="all"), read_codes(tables, status="all")
    assert sorted(merged["name"]) == sorted(folder["name"]) == list("abcdefg")
    order = np.argsort(merged["name"]), np.argsort(folder["name"])
    assert np.array_equal(merged["shape"][order[0]], folder["shape"][order[1]], equal_nan=True)
    assert not [p for p in out.parent.iterdir() if p.name != "all.parquet"]  # no partial file left


def test_merge_refuses_what_would_be_read_back_and_mixed_columns(tables, capsys):
    with pytest.raises(UsageError, match="read back"):
        from decaenv.runtime.table_tools import merge_tables

        merge_tables(tables, tables / "codes-all.parquet")
    with_marks = TableWriter(tables / "codes-2-of-2.parquet", landmarks=True)
    with_marks.add([_row("h", 8.0)])
    with_marks.close()
    out = tables.parent / "mixed.parquet"
    assert main(["table", "merge", str(tables), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "other columns" in err and "Traceback" not in err and not out.exists()
    assert not list(tables.parent.glob(".mixed.parquet*"))


def test_no_table_is_a_one_line_error(tmp_path, capsys):
    assert main(["table", "status", str(tmp_path)]) == 1
    assert "no decaenv table" in capsys.readouterr().err
    with pytest.raises(DataError):
        from decaenv.runtime.table_tools import table_status

        table_status(tmp_path / "missing.parquet")


def test_status_names_the_shards_without_a_table(tables, capsys):
    (tables / "codes-0-of-2.parquet").rename(tables / "codes-3-of-5.parquet")  # a 5-way split: 0, 1, 2, 4 missing
    assert main(["table", "status", str(tables), "--json"]) == 0
    missing = json.loads(capsys.readouterr().out)["missing_shards"]
    assert missing == ["0-of-2", "0-of-5", "1-of-5", "2-of-5", "4-of-5"]
    assert main(["table", "status", str(tables)]) == 0
    assert "shard(s) 0, 1, 2, 4 of 5" in capsys.readouterr().out


def test_an_item_in_several_tables_is_read_and_merged_once(tmp_path, capsys):
    import os

    old = TableWriter(tmp_path / "codes-0-of-2.parquet")  # a first 2-way split of the job
    old.add([_row("a", 1.0), _no_face("b"), _row("c", 3.0)])
    old.close()
    new = TableWriter(tmp_path / "codes-0-of-3.parquet")  # the job again, 3-way, written later
    new.add([_no_face("a"), _row("b", 20.0), _row("c", 30.0), _row("d", 40.0)])
    new.close()
    os.utime(tmp_path / "codes-0-of-2.parquet", (1_000_000, 1_000_000))
    codes = read_codes(tmp_path, status="all")
    got = {n: (s, float(v)) for n, s, v in zip(codes["name"], codes["status"], codes["shape"][:, 0])}
    # a: its ok row (the older table's); b: the newer table's ok row; c: ok in both, the newer one wins
    assert got == {"a": ("ok", 1.0), "b": ("ok", 20.0), "c": ("ok", 30.0), "d": ("ok", 40.0)}
    out = tmp_path.parent / f"{tmp_path.name}-merged.parquet"
    assert main(["table", "merge", str(tmp_path), "-o", str(out)]) == 0
    merged = read_codes(out, status="all")
    assert sorted(merged["name"]) == ["a", "b", "c", "d"] and sorted(merged["shape"][:, 0]) == [1.0, 20.0, 30.0, 40.0]
    assert read_codes(tmp_path, keys=("exp",))["name"].shape == (4,)  # only some keys: the same rows
    assert main(["table", "status", str(tmp_path)]) == 0
    assert "3 of those rows are of items already in another table" in capsys.readouterr().out

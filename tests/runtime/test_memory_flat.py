"""Memory stays flat over a long video run with --save table (a short version of bench/memory_flat.py,
which does 10,000 frames)."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("av")
BENCH = Path(__file__).resolve().parents[2] / "bench" / "memory_flat.py"


@pytest.mark.slow
def test_rss_flat_and_every_frame_in_the_table(tmp_path):
    spec = importlib.util.spec_from_file_location("memory_flat", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.measure(frames=600, batch=8, work=tmp_path, every=100)
    assert result["ok"] == result["rows"] == 600
    assert result["kept_items"] == 0  # with a table the summary keeps failures only
    mbs = [mb for _, mb in result["samples"]]
    assert max(mbs[1:]) - mbs[1] < 8, result["samples"]

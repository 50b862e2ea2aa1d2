"""The pickle replay itself is bounded: linear in the opcodes, whatever the stack holds."""

from __future__ import annotations

import io
import pickle
import time

import pytest

from decaenv.loaders.pickle_limits import Limits, PickleLimitError, check_pickle


def test_many_marks_over_a_deep_stack_stay_linear():
    body = b"K\x01" * 9000 + b"(1" * 150_000  # 9,000 ints on the stack, then MARK/POP_MARK pairs
    start = time.perf_counter()
    with pytest.raises(PickleLimitError, match="opcodes"):
        check_pickle(io.BytesIO(b"\x80\x02" + body + b"."), "marks.pkl")
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("obj", [{"a": [1, 2, 3], "b": (4.0, "x")}, [[1], [2, [3, [4]]]], {"k": set([1, 2])}])
def test_ordinary_pickles_pass_and_the_position_is_restored(obj):
    fh = io.BytesIO(b"junk" + pickle.dumps(obj, protocol=2))
    fh.seek(4)
    check_pickle(fh, "ok.pkl")
    assert fh.tell() == 4 and pickle.load(fh) == obj


def test_each_limit_names_itself():
    shared = [0]
    for _ in range(12):
        shared = [shared, shared]
    data = pickle.dumps(shared, protocol=2)
    with pytest.raises(PickleLimitError, match="expands to more than 1,000 objects"):
        check_pickle(io.BytesIO(data), "x", Limits(elements=1000))
    with pytest.raises(PickleLimitError, match="memo references"):
        check_pickle(io.BytesIO(data), "x", Limits(memo_refs=5))
    with pytest.raises(PickleLimitError, match="nests deeper than 5"):
        check_pickle(io.BytesIO(data), "x", Limits(depth=5))
    with pytest.raises(PickleLimitError, match="container of 20 items"):
        check_pickle(io.BytesIO(pickle.dumps(list(range(20)), protocol=2)), "x", Limits(container=10))

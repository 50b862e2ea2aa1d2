"""The run loop: the same outcomes, in input order, overlapped or one stage after the other; and where
overlapping is the default."""

from __future__ import annotations

import threading

import pytest

from decaenv.runtime import overlap
from decaenv.runtime.overlap import main_torch_threads, openmp_threads, overlap_pays, run_overlapped, usable_cpus


def _run(overlap: bool, input_in_thread: bool = True):
    threads = {"prepare": set(), "save": set()}
    reported = []

    def prepare(batch):
        threads["prepare"].add(threading.current_thread().name)
        return [x * 10 for x in batch], []  # (prepared, outcomes of items that failed here)

    def model(prepared):
        return [x + 1 for x in prepared], None

    def save(result, prepared):
        threads["save"].add(threading.current_thread().name)
        return result

    run_overlapped(
        iter([[1, 2], [3], [4, 5, 6]]), prepare, model, save, reported.append, overlap, input_in_thread=input_in_thread
    )
    return reported, threads


@pytest.mark.parametrize("overlap", [True, False])
def test_same_outcomes_in_order(overlap):
    reported, threads = _run(overlap)
    assert reported == [11, 21, 31, 41, 51, 61]
    main = threading.current_thread().name
    assert (threads["prepare"] == {main}) is (not overlap)  # overlapped: the input side runs in its own thread
    assert (threads["save"] == {main}) is (not overlap)


def test_input_inline_writing_in_its_thread():
    reported, threads = _run(True, input_in_thread=False)
    assert reported == [11, 21, 31, 41, 51, 61]
    assert threads["prepare"] == {threading.current_thread().name} and threads["save"] != threads["prepare"]


def test_inline_the_next_batch_is_prepared_while_the_previous_one_is_written():
    """Inline, batch k + 1 is prepared after batch k's networks, while the writing thread writes batch k: the
    writing shares the cores with the input workers (one queue: they even it out), not with the encoders."""
    events, first_written = [], threading.Event()

    def prepare(batch):
        if batch[0] == 3:  # the second batch: the first one's writing has started (or never will)
            events.append(("first batch being written", first_written.wait(timeout=5)))
        events.append(("prepare", batch[0]))
        return batch, []

    def model(prepared):
        events.append(("model", prepared[0]))
        return prepared, None

    def save(result, prepared):
        first_written.set()
        return result

    reported = []
    run_overlapped(iter([[1, 2], [3]]), prepare, model, save, reported.append, True, input_in_thread=False)
    assert reported == [1, 2, 3]
    assert events == [("prepare", 1), ("model", 1), ("first batch being written", True), ("prepare", 3), ("model", 3)]


def test_a_failing_input_side_reaches_the_caller_either_way():
    def prepare(batch):
        raise ValueError("unreadable")

    for inline in (True, False):
        with pytest.raises(ValueError, match="unreadable"):
            run_overlapped(iter([[1]]), prepare, lambda p: (p, None), lambda r, p: r, print, input_in_thread=not inline)


def test_overlap_pays_on_accelerators_and_with_more_than_two_cpus():
    assert overlap_pays("cuda:0", cpus=1) and overlap_pays("mps", cpus=2)
    assert not overlap_pays("cpu", cpus=2) and not overlap_pays("cpu", cpus=1)
    assert overlap_pays("cpu", cpus=3)
    assert overlap_pays("cpu") is (usable_cpus() > 2)


def test_items_are_written_on_several_threads_only_beside_an_accelerator():
    from decaenv.runtime.overlap import WRITE_WORKERS, write_workers

    assert write_workers("cuda:0", codes_files=True, cpus=16) == WRITE_WORKERS
    assert write_workers("cuda", codes_files=True, cpus=3) == 2  # every CPU but the one feeding the GPU
    assert write_workers("cuda", codes_files=True, cpus=1) == 1
    assert write_workers("cuda", codes_files=False, cpus=16) == 1  # rendered or encoded outputs: one thread
    assert write_workers("cpu", codes_files=True, cpus=16) == 1  # the networks' threads use the cores


def test_the_main_process_runs_one_torch_thread_beside_an_accelerator_only():
    assert main_torch_threads("cpu") is None  # the networks use every core
    assert main_torch_threads("cuda") == main_torch_threads("cuda:1") == main_torch_threads("mps") == 1


@pytest.mark.skipif(not openmp_threads(), reason="torch's intra-op threads are not OpenMP's")
def test_the_input_and_writing_threads_run_torch_on_one_thread(two_torch_threads):
    """They work beside the networks' threads: with torch's default each of their torch calls would start an
    OpenMP team as large as the networks' on the same cores. The caller's count and the default for threads
    started later stay as they were."""
    import torch

    seen = {}

    def prepare(batch):
        seen["prepare"] = torch.get_num_threads()
        return batch, []

    def save(result, prepared):
        seen["save"] = torch.get_num_threads()
        return result

    run_overlapped(iter([[1]]), prepare, lambda p: (p, None), save, lambda outcome: None, True)
    assert seen == {"prepare": 1, "save": 1}
    assert torch.get_num_threads() == 2
    later = []
    thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert later == [2]


def test_with_torchs_native_thread_pool_a_thread_keeps_the_process_count(monkeypatch):
    """There the count is one per process and may not change once parallel work has started."""
    import torch

    monkeypatch.setattr(overlap, "openmp_threads", lambda: False)
    seen = []

    def body():
        overlap.one_torch_thread()
        seen.append(torch.get_num_threads())

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [torch.get_num_threads()]

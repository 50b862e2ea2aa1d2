"""Preparing a batch's items on several threads: torch single-threaded in the workers (and only there), input
order kept, failures reported where they happened, the same codes as one item at a time; and the shared state
that made this unsafe before (MTCNN's summed-area table, Pillow's pixel limit) is per thread or locked."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from _support.runs import codes_options, photos, write_mixed_folder
from PIL import Image

from decaenv.runtime.input_pool import InputPool
from decaenv.runtime.overlap import MAX_INPUT_WORKERS, input_workers


def test_workers_run_torch_on_one_thread_and_the_caller_keeps_its_count(two_torch_threads):
    pool = InputPool(2)
    try:
        counts = pool.map(lambda _: (torch.get_num_threads(), threading.current_thread().name), range(6))
    finally:
        pool.close()
    assert {count for count, _ in counts} == {1}
    assert all(name.startswith("decaenv-prepare") for _, name in counts)
    assert torch.get_num_threads() == 2  # the networks' thread is untouched
    late = ThreadPoolExecutor(1)  # a thread created afterwards starts from the caller's count, not the workers'
    assert late.submit(torch.get_num_threads).result() == 2
    late.shutdown()


def test_results_in_order_and_the_first_error_raised():
    pool = InputPool(3)
    try:
        assert pool.map(lambda x: x * x, list(range(20))) == [x * x for x in range(20)]

        def boom(x):
            if x == 4:
                raise ValueError("item 4")
            return x

        with pytest.raises(ValueError, match="item 4"):
            pool.map(boom, list(range(8)))
    finally:
        pool.close()
    with pytest.raises(ValueError, match="at least two"):
        InputPool(1)


def test_a_worker_that_cannot_start_fails_the_pool_without_leaving_threads(monkeypatch):
    import time
    from concurrent.futures import ThreadPoolExecutor as Executor

    submitted = []
    real_submit = Executor.submit

    def submit(self, fn, *args, **kwargs):
        if submitted:
            raise RuntimeError("can't start new thread")
        submitted.append(fn)
        return real_submit(self, fn, *args, **kwargs)

    before = threading.active_count()
    monkeypatch.setattr(Executor, "submit", submit)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="can't start new thread"):
        InputPool(2)
    assert time.monotonic() - start < 10  # the started worker was released, not waited for until a timeout
    assert threading.active_count() == before


def test_how_many_workers_prepare_items():
    assert input_workers("cpu", input_in_thread=False, cpus=2) == 2  # inline on a small CPU: both cores
    assert input_workers("cpu", input_in_thread=True, cpus=16) == 1  # beside CPU networks: they use the cores
    assert input_workers("cuda:0", input_in_thread=True, cpus=16) == MAX_INPUT_WORKERS
    assert input_workers("cuda:0", input_in_thread=True, cpus=4) == 3  # one CPU feeds the GPU
    assert input_workers("mps", input_in_thread=True, cpus=1) == 1


def _photos():
    return photos()


def test_mtcnn_on_several_threads_finds_what_it_finds_alone(mtcnn_data_dir):
    from decaenv.runtime import detectors

    mtcnn = detectors.create_detector("mtcnn", "cpu", data_dir=mtcnn_data_dir).detector
    assert mtcnn.thread_safe
    photos = _photos() * 3
    alone = [mtcnn.detect(p) for p in photos]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(mtcnn.detect, photos))
    for one, other in zip(alone, together):
        assert one is not None and other is not None
        assert one.box == other.box and np.array_equal(one.landmarks, other.landmarks)


def test_reading_on_threads_leaves_pillows_pixel_limit_alone(tmp_path):
    from decaenv.runtime.images import read_image

    for k, photo in enumerate(_photos()):
        Image.fromarray(photo).save(tmp_path / f"p{k}.png")
    paths = sorted(tmp_path.iterdir()) * 8
    limit = Image.MAX_IMAGE_PIXELS
    with ThreadPoolExecutor(4) as pool:
        images = list(pool.map(read_image, paths))
    assert Image.MAX_IMAGE_PIXELS == limit
    assert all(np.array_equal(a, read_image(p)) for a, p in zip(images, paths))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_mixed_folder(tmp_path_factory.mktemp("pool-photos"))


def _run(deca, data_dir, folder, out, workers, monkeypatch):
    from decaenv.runtime.pipeline import Reconstructor

    monkeypatch.setattr("decaenv.runtime.overlap.input_workers", lambda *a, **k: workers)
    runner = Reconstructor(codes_options(data_dir, folder, out), deca=deca)
    seen = []
    original = runner._prepare_one

    def spy(entry):
        seen.append(threading.current_thread().name)
        return original(entry)

    runner._prepare_one = spy
    summary = runner.run()
    return summary, seen


def test_a_run_with_the_pool_equals_one_without(
    deca, reconstruct_data_dir, folder, tmp_path, monkeypatch, one_torch_thread
):
    pooled, threads = _run(deca, reconstruct_data_dir, folder, tmp_path / "pool", 2, monkeypatch)
    serial, alone = _run(deca, reconstruct_data_dir, folder, tmp_path / "serial", 1, monkeypatch)
    assert any(name.startswith("decaenv-prepare") for name in threads)
    assert not any(name.startswith("decaenv-prepare") for name in alone)
    order = [(o.name, o.status) for o in pooled.items]
    assert order == [(o.name, o.status) for o in serial.items]
    # (a batch reports the items that failed while being prepared first, then the ones it wrote)
    assert order == [("p1b_broken", "failed"), ("p0", "ok"), ("p1", "ok"), ("p2b_noface", "failed")] + [
        ("p2", "ok"),
        ("p3", "ok"),
    ]
    for name in ("p0", "p1", "p2", "p3"):
        a = np.load(tmp_path / "pool" / name / f"{name}_codes.npz")
        b = np.load(tmp_path / "serial" / name / f"{name}_codes.npz")
        for key in b.files:
            assert np.array_equal(a[key], b[key]), (name, key)

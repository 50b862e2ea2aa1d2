"""E_flame and E_detail side by side (decaenv.runtime.encoder_pair): on a CPU with the packed graph `encode` runs
them on two threads with half of torch's threads each — the same codes bit for bit, the caller's thread count
and torch's default for new threads as they were, the caller's grad / inference mode kept, errors passed on."""

import copy
import os
import signal
import threading
import time

import pytest
import torch

from decaenv.runtime.encoder_pair import PAIR_GRAPHS, EncoderPair, openmp_threads, pair_threads
from decaenv.runtime.fast_packed import packed_available

needs_openmp = pytest.mark.skipif(not openmp_threads(), reason="torch's intra-op threads are not OpenMP's")
needs_packed = pytest.mark.skipif(
    not packed_available(torch.device("cpu")) or not openmp_threads(), reason="torch without oneDNN or OpenMP"
)


@pytest.fixture
def crops(astronaut_crop):
    torch.manual_seed(1)
    return torch.cat([astronaut_crop[0], torch.rand(1, 3, 224, 224)])


def _new_thread_threads() -> int:
    """torch's thread count in a thread started now (it takes torch's process-wide default)."""
    seen = []
    worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    return seen[0]


def _sequential(deca, crops, monkeypatch):
    """`encode` with the pair switched off, for comparison."""
    with monkeypatch.context() as patch:
        patch.setattr(deca, "_encoder_pair", lambda: None)
        return deca.encode(crops)


def test_threads_are_split_between_the_two_networks(monkeypatch):
    from decaenv.runtime import encoder_pair

    assert encoder_pair.openmp_threads() == ("parallel backend: OpenMP" in torch.__config__.parallel_info())
    if not encoder_pair.openmp_threads():
        pytest.skip("torch's intra-op threads are not OpenMP's here")
    assert pair_threads(1) is None
    assert pair_threads(2) == (1, 1)
    assert pair_threads(3) == (1, 2)
    assert pair_threads(16) == (8, 8)
    assert PAIR_GRAPHS == ("packed",)
    monkeypatch.setattr(encoder_pair, "openmp_threads", lambda: False)  # torch's native pool: one count per process
    assert pair_threads(16) is None


@needs_packed
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_side_by_side_gives_the_sequential_codes_bit_for_bit(deca, crops, two_torch_threads, monkeypatch, precision):
    calls = []
    try:
        deca.accelerate(precision, "packed")
        pair = deca._encoder_pair()
        assert isinstance(pair, EncoderPair)
        deca._pair = _Spy(pair, calls)
        codes = deca.encode(crops)
        assert calls == [2]  # the pair ran, given two torch threads to split
        reference = _sequential(deca, crops, monkeypatch)
        for key in ("shape", "tex", "exp", "pose", "cam", "light", "detail"):
            assert torch.equal(codes[key], reference[key]), key
        assert torch.get_num_threads() == 2  # the caller's own
        assert _new_thread_threads() == 2  # torch's default for new threads, which the pair's threads set to 1
        assert not codes["shape"].is_inference() and not codes["shape"].requires_grad  # like the sequential call
        with torch.inference_mode():
            assert deca.encode(crops)["detail"].is_inference()
        assert calls == [2, 2]
    finally:
        deca.fast, deca._pair = None, None


class _Spy:
    """An EncoderPair stand-in that records the caller's torch thread count and calls the real one."""

    def __init__(self, real: EncoderPair, calls: list):
        self.real, self.calls = real, calls

    def __call__(self, first, second, images):
        self.calls.append(torch.get_num_threads())
        return self.real(first, second, images)


@needs_packed
def test_one_thread_other_graphs_and_the_eager_modules_run_one_after_the_other(deca, crops):
    try:
        assert deca._encoder_pair() is None  # --graph off: DECA's eager modules
        deca.accelerate("fp32", "fused")
        assert deca._encoder_pair() is None
        deca.accelerate("fp32", "packed")
        assert deca._encoder_pair() is not None
        pair = EncoderPair()
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            flame, detail = pair(deca.fast.E_flame, deca.fast.E_detail, crops[:1])
        finally:
            torch.set_num_threads(before)
        assert pair._pool is None  # no threads started
        assert flame.shape == (1, 236) and detail.shape == (1, 128)
    finally:
        deca.fast, deca._pair = None, None


@needs_openmp
def test_each_network_runs_with_its_share_of_the_threads():
    seen = []

    def network(images):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return images

    pair = EncoderPair()
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        pair(network, network, torch.ones(1))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
        pair.close()
    assert sorted(count for _, count in seen) == [1, 2]
    assert all(name.startswith("decaenv-encoder") for name, _ in seen)


@needs_openmp
def test_an_error_in_a_network_reaches_the_caller_and_threads_are_restored(two_torch_threads):
    def broken(images):
        raise RuntimeError("broken network")

    def late(images):  # still running when the other fails, and changing this thread's count then
        time.sleep(0.2)
        torch.set_num_threads(1)
        return images

    pair = EncoderPair()
    try:
        with pytest.raises(RuntimeError, match="broken network"):
            pair(torch.nn.Identity(), broken, torch.zeros(1))
        with pytest.raises(RuntimeError, match="broken network"):
            pair(broken, late, torch.zeros(1))  # the default is restored after both have finished
        time.sleep(0.4)  # (were it not, `late` would have overwritten it by now)
        assert torch.get_num_threads() == 2 and _new_thread_threads() == 2
        first, second = pair(torch.nn.Identity(), torch.nn.Identity(), torch.ones(2))  # still usable
        assert torch.equal(first, second)
    finally:
        pair.close()


@needs_openmp
def test_a_copied_pair_starts_threads_of_its_own(two_torch_threads):
    pair = EncoderPair()
    pair(torch.nn.Identity(), torch.nn.Identity(), torch.ones(1))
    assert pair._pool is not None
    copied = copy.deepcopy(pair)
    assert copied._pool is None and copied._lock is not pair._lock
    pair.close()
    assert pair._pool is None


@needs_openmp
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # Python 3.12+: meant
def test_a_forked_child_runs_the_pair_on_threads_of_its_own(two_torch_threads):
    """A child forked after the pair ran has none of its parent's threads: it must start its own, not wait on
    a parent's idle thread that is not there."""

    def slow(images):
        time.sleep(0.2)
        return images

    pair = EncoderPair()
    pair(slow, slow, torch.ones(1))  # both threads busy at once: the parent's pool has two, both idle after
    assert pair._pool is not None and len(pair._pool._threads) == 2
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when the pair computes
        try:
            first, second = pair(torch.nn.Identity(), torch.nn.Identity(), torch.ones(2))
            os._exit(0 if torch.equal(first, second) else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's pair hung")
    pair.close()
    assert os.waitstatus_to_exitcode(status) == 0

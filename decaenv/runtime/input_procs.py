"""A batch's items prepared (read, decode, detect, crop) in worker processes (`--input-workers processes`).

Threads share one interpreter lock: preparing one 512×512 photo holds it ~3.8 ms of its ~25 CPU-ms (the
detector's many small torch calls, the summed-area table's rows, skimage's transform set-up; `py-spy --gil`,
docs/BENCHMARKS.md), so however many cores a GPU box has, threads prepare at most ~260 images/s, and even on two
cores the threads and the networks' thread wait on each other. Worker processes each hold their own: the parent
only sends an item (a path, or a video frame in a shared frame slot) and a free crop slot's number; the worker
writes the crop into that slot of a shared ring and sends back the rest (`shared_slots`): ~0.6-0.8 ms of the
parent's CPU per item. Each worker builds its own detector on its CPU (MTCNN, 1.9 MB of weights; `none`), with
one torch thread.
"""

from __future__ import annotations

import atexit
import dataclasses
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from decaenv.errors import DecaenvError
from decaenv.runtime.shared_slots import MIN_SLOTS, CropSlots, FrameSlots, fitting_slots

#: Detectors a worker process can rebuild on its CPU (FAN is too slow there: it keeps the threads).
PROCESS_DETECTORS = ("mtcnn", "none")
#: `--input-workers auto` starts worker processes for runs of at least this many items (their ~2 s start is then
#: paid back: beside a GPU threads top out at ~260 items/s, on a CPU processes save 3-8 % of each item's time;
#: docs/BENCHMARKS.md), and beside an accelerator for runs of unknown length (a video with no length in its header).
AUTO_PROCESS_ITEMS = 1000


@dataclass(frozen=True)
class PrepareSpec:
    """What every worker needs to prepare items like the parent would.

    Attributes:
        detector: "mtcnn", "none", or "" without cropping (`--iscrop false`). data_dir: the MTCNN weights' data
        dir (None: the resolved default). with_image: send the decoded image back (outputs rendered at the
        original size need it).
    """

    detector: str
    data_dir: Optional[str]
    with_image: bool = False


@dataclass
class Prepared:
    """One item's input side: its crop (and image when asked for), or the one-line error; seconds per stage.
    slot: the crop slot holding the crop's pixels (its `image` is then None until the main process fills it in)."""

    crop: object = None
    image: object = None
    error: str = ""
    seconds: Dict[str, float] = field(default_factory=dict)
    slot: Optional[int] = None


#: The worker process's preparer (set by `_start`).
_WORKER: dict = {}


def _start(spec: PrepareSpec, ring=None) -> None:
    """Worker initialiser: no Ctrl-C of its own (the parent stops the workers: a worker would print a
    traceback), a quick exit, freed blocks kept in the heap (`heap`), one torch thread, the preparer with its
    detector, and the shared crop slots (a tensor)."""
    from decaenv.runtime.heap import keep_freed_blocks

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(_exit_now)  # (the last registered, so the first to run at exit)
    keep_freed_blocks()
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from decaenv.runtime.rasterizer import extension

    extension.load()  # its input-side kernels (crop warp, PNG unfiltering, MTCNN's) when built
    from decaenv.runtime import png_fast

    png_fast.enable()  # its decoders hold the lock while decoding: fine in a process of its own, not in threads
    _WORKER["prepare"] = Preparer(spec)
    _WORKER["ring"] = ring.numpy() if ring is not None else None


def _exit_now() -> None:
    """A worker's exit: at once, without the interpreter's teardown (~0.5 s with torch loaded, which `close`
    would wait for). A worker holds nothing that needs finalising: its crops are in shared memory the parent
    owns, its results already sent."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _prepare(item, slot: Optional[int] = None, frame=None) -> Prepared:
    if frame is not None:  # a video frame's pixels, in a shared slot (a tensor)
        _WORKER["frame"] = frame  # (keeps its ring mapped here: the next frames arrive in the same ring)
        item = dataclasses.replace(item, pixels=frame.numpy())
    ring = _WORKER["ring"]
    done = _WORKER["prepare"](item, crop_out=ring[slot] if slot is not None else None)  # warped into the slot
    if slot is not None and done.crop is not None:
        done.crop, done.slot = dataclasses.replace(done.crop, image=None), slot
    return done


def _ready() -> int:
    """A task that only makes a worker start (`ProcessInputPool.warm`)."""
    return os.getpid()


class Preparer:
    """Read, detect and crop one `Item` (the calls `Reconstructor._prepare_named` makes), as a worker does.

    Raises:
        DataError: the detector cannot be built.
    """

    def __init__(self, spec: PrepareSpec):
        from skimage.transform import estimate_transform  # noqa: F401 - the crop's (lazily loaded): ~0.2 s, here

        self.spec, self.detector = spec, None
        if spec.detector:
            from decaenv.runtime.detectors import create_detector

            data_dir = Path(spec.data_dir) if spec.data_dir else None
            self.detector = create_detector(spec.detector, "cpu", data_dir=data_dir).detector

    def __call__(self, item, crop_out=None) -> Prepared:
        """`crop_out`: (S, S, 3) float32 memory the crop is warped into (a shared crop slot), else new."""
        import torch

        from decaenv.errors import InputError
        from decaenv.runtime.crop import make_crop
        from decaenv.runtime.datasets import find_item_face

        done = Prepared()
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            done.seconds[stage] = now - clock
            clock = now

        try:
            image = item.load()
            lap("read")
            with torch.inference_mode():
                found = find_item_face(image, item, iscrop=bool(self.spec.detector), detector=self.detector)
            lap("detect")
            box, kind, origin = found
            done.crop = make_crop(image, box, kind, origin, out=crop_out)
            lap("crop")
        except InputError as exc:
            done.error = exc.one_line()
            return done
        done.image = image if self.spec.with_image else None
        return done


def process_spec(choice, keeps_images: bool) -> Tuple[Optional[PrepareSpec], str]:
    """(spec, "") when worker processes can prepare items the way a run with detector `choice` (a
    `DetectorChoice`, or None for `--iscrop false`) does, else (None, why not).

    Args:
        keeps_images: writing needs each item's decoded image.
    """
    from decaenv.runtime.detectors import NoDetector
    from decaenv.runtime.detectors.mtcnn import MtcnnDetector

    detector = choice.detector if choice is not None else None
    if detector is not None and not isinstance(detector, (MtcnnDetector, NoDetector)):
        return None, f"the {choice.name} detector runs only in the main process"
    name = "" if detector is None else ("none" if isinstance(detector, NoDetector) else "mtcnn")
    data_dir = getattr(detector, "data_dir", None)
    return PrepareSpec(name, str(data_dir) if data_dir is not None else None, with_image=keeps_images), ""


def auto_uses_processes(device_type: str, expected_items: Callable[[], Optional[int]]) -> bool:
    """`--input-workers auto`: processes for runs long enough to pay the workers' start (`AUTO_PROCESS_ITEMS`;
    a video's frames counted from its header; beside an accelerator also for a video whose header gives no
    length), and only under the command line
    (`runs_decaenv_cli`).

    Args:
        expected_items: the run's item count (None: unknown), asked only under the command line.
    """
    if not runs_decaenv_cli():  # a library caller's script may re-run in every worker: it asks explicitly
        return False
    total = expected_items()
    if total is None:  # a video that declares no length: on a CPU the workers' ~2 s start might not pay back
        return device_type != "cpu"
    return total >= AUTO_PROCESS_ITEMS


def runs_decaenv_cli() -> bool:
    """Whether this process runs decaenv's command line. A spawned worker imports the parent's main module:
    decaenv's does nothing on import, a user's script not guarded by `if __name__ == "__main__":` would run
    again in every worker — so `--input-workers auto` starts processes only under the command line."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name in ("decaenv", "decaenv.__main__"):
        return True
    path = getattr(main, "__file__", None)
    return path is not None and Path(path).stem in ("decaenv", "decaenv-script")


class ProcessInputPool:
    """`workers` processes that prepare items (`map`), in order; their crops come back through `slots` shared
    crop slots (`shared_slots`; 0: pickled). Items go out `per_message` at a time (0: about a quarter of each
    worker's share of a batch: fewer messages, futures and wake-ups in this process).

    Raises:
        DecaenvError: a worker could not start or died (the run stops with a one-line error).
    """

    def __init__(self, workers: int, spec: PrepareSpec, slots: int = 64, per_message: int = 0):
        if workers < 1:
            raise ValueError("a process pool needs at least one worker")
        if spec.detector not in PROCESS_DETECTORS + ("",):
            raise ValueError(f"detector {spec.detector!r} cannot run in the input processes")
        self.workers, self.spec, self.slot_count, self.per_message = workers, spec, slots, per_message
        fitting = fitting_slots(slots) if slots > 0 else 0
        self.slots = CropSlots(fitting) if fitting > 0 else None
        # a batch's video frames on their way out (the crop slots cover about four batches)
        self.frames = FrameSlots(max(MIN_SLOTS, slots // 4)) if slots > 0 else None
        ring = self.slots.ring if self.slots is not None else None
        # spawn: a forked child of a process with torch's (and CUDA's) threads running is not safe
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(spec, ring))

    def warm(self) -> None:
        """Start every worker now, in the background (each starts an interpreter, imports torch and builds its
        detector), instead of on the first `map`."""
        for _ in range(self.workers):
            self._pool.submit(_ready)

    def map(self, items: Sequence) -> List[Prepared]:
        """[prepared item] for `Item`s, computed on the workers, in order."""
        slots = self.slots
        numbers = [slots.take() if slots is not None else None for _ in items]
        items, frames = self._frames_out(items)
        try:
            chunk = self.per_message or max(1, len(items) // (4 * self.workers))
            done = list(self._pool.map(_prepare, items, numbers, frames, chunksize=chunk))
        except BrokenProcessPool as exc:
            raise DecaenvError(
                "an input worker process stopped (out of memory, killed, or it could not start)",
                hint="rerun with --input-workers threads",
            ) from exc
        finally:
            if self.frames is not None:
                self.frames.release()
        for prepared, number in zip(done, numbers):
            if prepared.slot is not None:
                prepared.crop = dataclasses.replace(prepared.crop, image=slots.crop(prepared.slot))  # type: ignore
            elif number is not None:
                slots.give_back(number)  # type: ignore[union-attr]
        return done

    def _frames_out(self, items: Sequence) -> Tuple[list, list]:
        """(items, frames): each video frame's pixels moved into a frame slot where one is free (the item then
        goes without them), else left in the item (pickled)."""
        out, frames = [], []
        for item in items:
            slot = self.frames.put(item.pixels) if self.frames is not None and item.pixels is not None else None
            out.append(item if slot is None else dataclasses.replace(item, pixels=None))
            frames.append(slot)
        return out, frames

    def close(self) -> None:
        """Stop the workers (items not started, after an interruption, are dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

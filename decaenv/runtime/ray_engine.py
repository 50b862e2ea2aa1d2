"""`decaenv reconstruct --engine ray`'s workers: `DecaPredictor`, one DECA per Ray worker actor, turning work
units (images, or video segments it decodes itself) into table rows. The driver is `decaenv.runtime.ray_job`;
the predictor is also usable in your own `ray.data` pipelines (docs/cluster.md).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Set

import numpy as np

if TYPE_CHECKING:
    from decaenv.runtime.run_types import ItemOutcome

log = logging.getLogger("decaenv")
#: The Ray workers' (unused) output folder, inside the cache dir.
RAY_SCRATCH = "ray-worker"


class DecaPredictor:
    """One DECA per Ray worker: a batch of work units → table rows.

    A batch holds either a column "unit" (what `--engine ray` sends: JSON work units, each a list of images or a
    segment of a video that the worker decodes itself, see `decaenv.runtime.video_segments`) or the columns
    name, source, frame, pixels (items of your own pipeline: pixels empty for a file, else (H, W, 3) uint8).

    Args:
        options: `ReconstructOptions` fields as a dict (out_dir is not written to).
    Returns (per call): {"payload": [Arrow IPC bytes of the rows], "node": [the worker's node id], "threads":
    [its torch threads]}. On a CPU worker torch runs on the node's CPUs (`worker_threads`).
    """

    def __init__(self, options: Mapping[str, Any]):
        from decaenv.paths import cache_dir
        from decaenv.runtime.pipeline import Reconstructor
        from decaenv.runtime.run_types import ReconstructOptions

        # plain values shipped to the worker, made `ReconstructOptions` fields again here; the output folder is
        # one fixed, empty folder of the cache (nothing is written there: no temporary folder left per worker)
        fields: Dict[str, Any] = dict(
            options,
            out_dir=cache_dir() / RAY_SCRATCH,
            save="codes",
            skip_existing=False,
            shard=None,
            overlap=None,  # the next batch read beside the networks where that pays (`overlap_pays`)
            input_workers="threads",  # a unit's items prepared on threads (worker processes: a local run's choice)
        )
        fields["inputs"] = [Path(p) for p in fields["inputs"]]
        if isinstance(fields.get("data_dir"), dict):  # `asdict` flattened the resolved DataDir for shipping
            from decaenv.paths import DataDir

            fields["data_dir"] = DataDir(path=Path(fields["data_dir"]["path"]), source=fields["data_dir"]["source"])
        self.runner = Reconstructor(ReconstructOptions(**fields))
        self.runner.failure_rows = True  # kept in `_failure_rows` until reported: sent back with the others
        self.landmarks = bool(options.get("table_landmarks"))
        self.batch_size = max(1, int(options.get("batch_size") or 1))
        self.threads = worker_threads()
        self._input_in_thread: Optional[bool] = None

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        import torch

        from decaenv.runtime.table import rows_to_batch

        if self.threads is not None:  # (per calling thread with OpenMP: set where the networks run)
            torch.set_num_threads(self.threads)
        if "unit" in batch:
            rows = [row for unit in batch["unit"] for row in self._unit(json.loads(str(unit)))]
        else:
            rows = self._run(_batch_items(batch), len(batch["name"]))  # the batch is the networks' batch
        return {
            "payload": np.array([_ipc_bytes(rows_to_batch(rows, self.landmarks))], dtype=object),
            "node": np.array([_node_id()], dtype=object),
            "threads": np.array([torch.get_num_threads()]),
        }

    def _unit(self, unit: Mapping[str, Any]) -> List[Dict[str, object]]:
        from decaenv.runtime.inputs import Item

        if unit["kind"] == "images":
            items = (Item(name, Path(source), error=_not_here(Path(source))) for name, source in unit["items"])
            return self._run(items, self.batch_size)
        failures: List[Dict[str, object]] = []
        rows = self._run(_segment_items(unit, failures), self.batch_size)
        return rows + failures

    def _run(self, items: Iterable[Any], batch_size: int) -> List[Dict[str, object]]:
        """The items' table rows, as a local run makes them (`run_overlapped`): each batch of `batch_size` read,
        detected and cropped on the input threads, beside the previous batch's networks where that pays."""
        from decaenv.runtime.inputs import batched
        from decaenv.runtime.overlap import run_overlapped
        from decaenv.runtime.run_types import ItemOutcome

        runner = self.runner
        if self._input_in_thread is None:  # once per worker: DECA, then the input threads
            runner.load()
            self._input_in_thread = runner._input_in_thread()
            runner._input_pool = runner._make_input_pool(self._input_in_thread)
        rows: List[Dict[str, object]] = []
        runner._failure_rows = {}

        def save(result, prepared) -> List[ItemOutcome]:
            ok = [ItemOutcome(name, item.label, "ok") for name, item, _, _ in prepared]
            rows.extend(runner._table_rows(result, prepared, ok))
            return ok

        def report(outcome: ItemOutcome) -> None:
            row = runner._failure_rows.pop(outcome.name, None)
            if row is not None:
                rows.append(row)

        batches = batched(((item.name, item) for item in items), batch_size)
        model, prepare = runner._model_batch, runner._prepare_batch
        run_overlapped(
            batches, prepare, model, save, report, save_in_thread=False, input_in_thread=self._input_in_thread
        )
        return rows


def _batch_items(batch: Dict[str, np.ndarray]) -> Iterator[Any]:
    """The items of a batch in the item-column format (name, source, frame, pixels)."""
    from decaenv.runtime.inputs import Item

    for name, source, frame, pixels in zip(batch["name"], batch["source"], batch["frame"], batch["pixels"]):
        yield Item(
            name=str(name),
            source=Path(str(source)),
            frame=None if int(frame) < 0 else int(frame),
            pixels=None if pixels is None or np.size(pixels) == 0 else np.asarray(pixels, np.uint8),
        )


def _segment_items(unit: Mapping[str, Any], failures: List[Dict[str, object]]) -> Iterator[Any]:
    """The frames of a video unit, decoded here, as items; a failed row for each frame not decoded is added to
    `failures` once the segment is done."""
    from decaenv.errors import InputError
    from decaenv.runtime.inputs import Item, frame_name
    from decaenv.runtime.table import make_row
    from decaenv.runtime.video_segments import Segment, decode_segment

    source, base = Path(unit["source"]), str(unit["base"])
    segment = Segment(
        tuple(unit["frames"]), tuple(unit["pts"]), unit["seek"], unit["stop"], keyframe=unit.get("keyframe")
    )
    seen: Set[int] = set()
    missing = _not_here(source)
    message = missing.one_line() if missing is not None else ""
    try:
        for index, rgb in decode_segment(source, segment) if missing is None else ():
            seen.add(index)
            yield Item(name=frame_name(base, index), source=source, frame=index, pixels=rgb)
    except InputError as exc:
        message = exc.one_line()
    for index in segment.frames:
        if index not in seen:
            text = message or f"frame {index} of video {source} was not decoded (fewer frames than its packets)"
            failures.append(make_row(frame_name(base, index), str(source), index, "failed", text))


def _not_here(source: Path):
    """The error for a unit's file this worker cannot see (the driver listed it), or None."""
    if source.exists():
        return None
    from decaenv.errors import InputError

    try:
        import ray

        node = f"Ray node {ray.util.get_node_ip_address()}" if ray.is_initialized() else "this worker"
    except Exception:  # noqa: BLE001 - Ray missing or its state unavailable
        node = "this worker"
    return InputError(
        f"{source} is not on {node}, though the driver found it",
        hint="put the inputs on a disk every node mounts at the same path (docs/cluster.md)",
        path=source,
    )


def _ipc_bytes(record_batch) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, record_batch.schema) as writer:
        writer.write_batch(record_batch)
    return sink.getvalue().to_pybytes()


def _node_id() -> str:
    try:
        import ray

        # outside Ray (direct use of the predictor): asking Ray for a node would start a local instance
        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    except Exception:  # noqa: BLE001 - Ray missing or its context unavailable
        return "local"


def worker_threads() -> Optional[int]:
    """Torch threads for a CPU worker: its node's CPUs (as Ray counts them, at most those this process may run
    on). Ray starts an actor that reserves less than a CPU with OMP_NUM_THREADS=1, which would leave a cluster
    of one DECA per node on one core per node. None (threads as they are) on a GPU worker or outside Ray."""
    try:
        import ray

        if not ray.is_initialized() or ray.get_gpu_ids():
            return None
        node = ray.get_runtime_context().get_node_id()
        cpus = next((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["NodeID"] == node), 0)
    except Exception:  # noqa: BLE001 - Ray missing or its state unavailable: leave the threads alone
        return None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(int(cpus), usable)) if cpus >= 1 else None

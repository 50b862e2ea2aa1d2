"""`decaenv reconstruct --engine ray`: the same job on a Ray cluster, written to the same Parquet table.

Why the command and not only a `ray.data` recipe: a job then grows from a laptop to a cluster by adding two
flags, with the same inputs, names, resume and table as the local run. Underneath it *is* the recipe:
the driver lists the inputs (names assigned exactly as locally), `ray.data.from_items` makes them a dataset,
`map_batches(DecaPredictor, concurrency=workers)` runs one DECA per worker actor (one per GPU when the
cluster has GPUs, else one per node, spread over the nodes), and the driver appends each returned batch to
the table (journaled, so a killed driver keeps the finished rows and `--skip-existing` resumes).
`DecaPredictor` is importable and usable in your own `ray.data` pipelines (docs/cluster.md).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, TypedDict

import numpy as np

from decaenv.errors import UsageError

if TYPE_CHECKING:
    from decaenv.runtime.run_types import ItemOutcome

log = logging.getLogger("decaenv")
#: The Ray workers' (unused) output folder, inside the cache dir.
RAY_SCRATCH = "ray-worker"


class DecaPredictor:
    """One DECA per Ray worker: a batch of items {name, source, frame, pixels} → table rows.

    Args:
        options: `ReconstructOptions` fields as a dict (out_dir is not written to).
    Returns (per call): {"payload": [Arrow IPC bytes of the rows], "node": [the worker's node id]}.
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
            overlap=False,
        )
        fields["inputs"] = [Path(p) for p in fields["inputs"]]
        if isinstance(fields.get("data_dir"), dict):  # `asdict` flattened the resolved DataDir for shipping
            from decaenv.paths import DataDir

            fields["data_dir"] = DataDir(path=Path(fields["data_dir"]["path"]), source=fields["data_dir"]["source"])
        self.runner = Reconstructor(ReconstructOptions(**fields))
        self.landmarks = bool(options.get("table_landmarks"))

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        from decaenv.runtime.inputs import Item
        from decaenv.runtime.run_types import ItemOutcome
        from decaenv.runtime.table import make_row, rows_to_batch

        runner = self.runner
        rows: List[Dict[str, object]] = []
        outcomes: List[ItemOutcome] = []
        prepared = []
        for name, source, frame, pixels in zip(batch["name"], batch["source"], batch["frame"], batch["pixels"]):
            item = Item(
                name=str(name),
                source=Path(str(source)),
                frame=None if int(frame) < 0 else int(frame),
                pixels=None if pixels is None or np.size(pixels) == 0 else np.asarray(pixels, np.uint8),
            )
            got = runner._prepare_named(item.name, item, outcomes.append)
            if got is None:
                rows.append(make_row(item.name, str(item.source), item.frame, "failed", outcomes[-1].message))
            else:
                prepared.append(got)
        if prepared:
            result, failed = runner._model_batch(prepared)
            if result is None:
                for (name, item, crop, _), outcome in zip(prepared, failed):
                    source, message = str(item.source), outcome.message
                    rows.append(make_row(name, source, item.frame, "failed", message, crop_source=crop.source))
            else:
                ok = [ItemOutcome(name, str(item.source), "ok") for name, item, _, _ in prepared]
                rows.extend(runner._table_rows(result, prepared, ok))
        return {
            "payload": np.array([_ipc_bytes(rows_to_batch(rows, self.landmarks))], dtype=object),
            "node": np.array([_node_id()], dtype=object),
        }


def _ipc_bytes(record_batch) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, record_batch.schema) as writer:
        writer.write_batch(record_batch)
    return sink.getvalue().to_pybytes()


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray (direct use of the predictor)
        return "local"


def _require_ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise UsageError(f"--engine ray needs Ray ({exc})", hint="pip install 'decaenv[ray]'") from exc
    return ray


class ItemRow(TypedDict):
    """One dataset row: an input item (`frame` -1 for an image; `pixels` empty unless it is a video frame)."""

    name: str
    source: str
    frame: int
    pixels: np.ndarray  # (H, W, 3) uint8 RGB, or (0,)


def _item_rows(options, names) -> List[Tuple[ItemRow, str]]:
    """The dataset rows with the input error of each ("" when none): every input item (video frames carry
    their pixels), names as in a local run."""
    from decaenv.runtime.inputs import expand_inputs

    rows = []
    for item in expand_inputs(options.inputs, options.sample_step):
        row = ItemRow(
            name=names.unique(item),
            source=str(item.source),
            frame=-1 if item.frame is None else item.frame,
            pixels=item.pixels if item.pixels is not None else np.zeros(0, np.uint8),
        )
        rows.append((row, item.error.one_line() if item.error is not None else ""))
    return rows


def _workers(ray) -> tuple:
    """(number of DECA workers, GPUs per worker, CPUs per worker): one per GPU, else one per node."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return gpus, 1, 1
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = resources.get("CPU", 1.0)
    return max(1, len(nodes)), 0, max(0.25, min(1.0, cpus / max(1, len(nodes)) / 2))


def run_on_ray(options, engine: str, address: Optional[str], console=None):
    """Run `options` on Ray; returns the `RunSummary` (items: the failures; counts of every status).

    Raises:
        UsageError: unknown engine, Ray/pyarrow missing, or outputs other than the table requested.
    """
    import pyarrow as pa

    from decaenv.runtime.export import parse_save
    from decaenv.runtime.run_types import ItemOutcome, NameRegistry, RunSummary, prepare_out_dir
    from decaenv.runtime.table import TableWriter, make_row, table_path

    if engine != "ray":
        raise UsageError(f"unknown --engine {engine!r}", hint="use local or ray")
    kinds = parse_save(options.save if isinstance(options.save, str) else ",".join(options.save))
    if set(kinds) != {"table"}:
        raise UsageError("--engine ray writes the Parquet table only", hint="use --save table")
    if options.shard is not None:
        raise UsageError("--engine ray spreads the items itself: --shard does not apply", hint="drop --shard")
    ray = _require_ray()
    start = time.perf_counter()
    out_dir = prepare_out_dir(options.out_dir)
    table = TableWriter(table_path(out_dir), landmarks=options.table_landmarks)
    done = table.done_names() if options.skip_existing else set()
    summary = RunSummary(
        out_dir=str(out_dir),
        detector=options.detector,
        device=options.device,
        precision=options.precision,
        table=str(table.path),
    )
    summary.counts = {}

    def count(status: str, outcome: Optional[ItemOutcome] = None) -> None:
        summary.counts[status] = summary.counts.get(status, 0) + 1
        if outcome is not None and len(summary.items) < 1000:
            summary.items.append(outcome)

    todo: List[ItemRow] = []
    for row, error in _item_rows(options, NameRegistry(quiet=True)):
        if row["name"] in done:
            count("skipped")
        elif error:
            table.add([make_row(row["name"], row["source"], None, "failed", "input error")])
            count("failed", ItemOutcome(row["name"], row["source"], "failed", "input error"))
        else:
            todo.append(row)
    nodes_used = set()
    if todo:
        ray.init(
            address=address or os.environ.get("RAY_ADDRESS"),
            ignore_reinit_error=True,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        try:
            workers, gpus, cpus = _workers(ray)
            # one batch in flight per worker: the items spread over every worker instead of queueing on the
            # first one that is ready (a DECA takes seconds to load)
            ray.data.DataContext.get_current().max_tasks_in_flight_per_actor = 1
            fields = {
                k: (list(map(str, v)) if k == "inputs" else str(v) if isinstance(v, Path) else v)
                for k, v in asdict(replace(options, shard=None)).items()
            }
            dataset = ray.data.from_items(todo).map_batches(
                DecaPredictor,
                fn_constructor_kwargs={"options": fields},
                batch_size=options.batch_size,
                concurrency=workers,
                num_gpus=gpus or None,
                num_cpus=cpus,
                scheduling_strategy="SPREAD",
            )
            for batch in dataset.iter_batches(batch_size=None):
                for payload, node in zip(batch["payload"], batch["node"]):
                    records = pa.ipc.open_stream(payload).read_all()
                    table.add_table(records)
                    nodes_used.add(node)
                    for name, status, error in zip(
                        records.column("name").to_pylist(),
                        records.column("status").to_pylist(),
                        records.column("error").to_pylist(),
                    ):
                        count(status, None if status == "ok" else ItemOutcome(name, "", status, error))
        finally:
            table.close()
            ray.shutdown()
    else:
        table.close()
    summary.seconds = time.perf_counter() - start
    summary.engine = {"name": "ray", "nodes_used": len(nodes_used)}
    return summary

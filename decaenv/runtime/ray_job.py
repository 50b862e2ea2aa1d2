"""`decaenv reconstruct --engine ray`: the same job on a Ray cluster, written to the same Parquet table.

Why the command and not only a `ray.data` recipe: a job then grows from a laptop to a cluster by adding two
flags, with the same inputs, names, resume and table as the local run. Underneath it *is* the recipe: the driver
plans the work (`decaenv.runtime.ray_plan`: names assigned exactly as locally; images in units, videos in
keyframe segments the workers decode), `ray.data.from_items` makes the units a dataset,
`map_batches(DecaPredictor, concurrency=workers)` runs one DECA per worker actor (one per GPU when the cluster
has GPUs, else one per node, spread over the nodes), and the driver appends each returned unit's rows to the
table (journaled, so a killed driver keeps the finished rows and `--skip-existing` resumes).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Optional

from decaenv.errors import UsageError
from decaenv.runtime.ray_engine import DecaPredictor

if TYPE_CHECKING:
    from decaenv.runtime.ray_plan import Plan

log = logging.getLogger("decaenv")


class RayJob:
    """One `--engine ray` run: `expected_items` (plans the work; nothing decoded), then `run(on_item)`.

    Raises (on creation):
        UsageError: unknown engine, Ray/pyarrow missing, --shard, or outputs other than the table requested.
    """

    def __init__(self, options, engine: str, address: Optional[str] = None):
        from decaenv.runtime.save_kinds import parse_save

        if engine != "ray":
            raise UsageError(f"unknown --engine {engine!r}", hint="use local or ray")
        kinds = parse_save(options.save if isinstance(options.save, str) else ",".join(options.save))
        if set(kinds) != {"table"}:
            raise UsageError("--engine ray writes the Parquet table only", hint="use --save table")
        if options.shard is not None:
            raise UsageError("--engine ray spreads the items itself: --shard does not apply", hint="drop --shard")
        _require_ray(load=False)  # (imported when the job runs: a finished job's rerun does not wait ~0.9 s for it)
        self.options, self.address = options, address
        self._plan: Optional[Plan] = None

    def plan(self) -> Plan:
        """The job's `ray_plan.Plan` (made once: the table's done names read, the videos indexed)."""
        if self._plan is None:
            from decaenv.runtime.ray_plan import plan_work
            from decaenv.runtime.run_types import prepare_out_dir
            from decaenv.runtime.table import TableWriter, table_path

            self.table = TableWriter(table_path(prepare_out_dir(self.options.out_dir)), self.options.table_landmarks)
            done = self.table.done_names() if self.options.skip_existing else set()
            self._plan = plan_work(self.options, done)
        return self._plan

    def expected_items(self) -> int:
        """Items this run reconstructs or fails (the skipped ones left out)."""
        plan = self.plan()
        return len(plan.failed) + plan.items()

    def run(self, on_item: Optional[Callable] = None):
        """Run the job; `on_item(outcome)` for every item done (in the order the workers send them back).
        Returns the `RunSummary` (items: the failures; counts of every status)."""
        from decaenv.runtime.run_types import ItemOutcome, RunSummary

        start = time.perf_counter()
        plan, options = self.plan(), self.options
        summary = RunSummary(
            out_dir=str(self.table.path.parent),
            detector=options.detector,
            device=options.device,
            precision=options.precision,
            table=str(self.table.path),
        )
        summary.counts = {"skipped": plan.skipped} if plan.skipped else {}

        def count(outcome: ItemOutcome) -> None:
            summary.counts[outcome.status] = summary.counts.get(outcome.status, 0) + 1
            if outcome.status != "ok" and len(summary.items) < 1000:
                summary.items.append(outcome)
            if on_item is not None:
                on_item(outcome)

        if plan.failed:
            self.table.add(plan.failed)
        for row in plan.failed:
            count(ItemOutcome(str(row["name"]), str(row["source"]), "failed", str(row["error"])))
        nodes: Dict[str, int] = {}
        try:
            if not plan.empty():
                self._run_units(plan, count, nodes)
        finally:
            self.table.close()
        summary.seconds = time.perf_counter() - start
        # each node's DECA: its torch threads
        summary.engine = {"name": "ray", "nodes_used": len(nodes), "threads_per_node": sorted(nodes.values())}
        return summary

    def _run_units(self, plan, count: Callable, nodes: Dict[str, int]) -> None:
        import pyarrow as pa

        from decaenv.runtime.run_types import ItemOutcome

        ray, options = _require_ray(), self.options
        ray.init(
            address=self.address or os.environ.get("RAY_ADDRESS"),
            ignore_reinit_error=True,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        try:
            workers, gpus, cpus = _workers(ray)
            _quiet_ray_data(ray)
            # the workers' options: plain values, without the inputs (the units name their files)
            fields = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(replace(options, inputs=[])).items()}
            units = plan.units(workers, options.batch_size)
            with warnings.catch_warnings():  # SPREAD has no named parameter (Ray 2.6x: "ray_remote_args" warning)
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
                dataset = _dataset(ray, units, fields, workers, gpus, cpus)
            for batch in dataset.iter_batches(batch_size=None):
                for payload, node, threads in zip(batch["payload"], batch["node"], batch["threads"]):
                    records = pa.ipc.open_stream(payload).read_all()
                    self.table.add_table(records)
                    nodes[str(node)] = int(threads)
                    columns = [records.column(k).to_pylist() for k in ("name", "source", "status", "error")]
                    for name, source, status, error in zip(*columns):
                        count(ItemOutcome(name, source, status, error))
        finally:
            ray.shutdown()


def _dataset(ray, units, fields, workers: int, gpus: int, cpus: float):
    """The units as a dataset, mapped by one `DecaPredictor` per worker, spread over the nodes."""
    return ray.data.from_items([{"unit": unit} for unit in units]).map_batches(
        DecaPredictor,
        fn_constructor_kwargs={"options": fields},
        batch_size=1,
        # one unit in flight per worker: the units spread over every worker instead of queueing on the first
        # one that is ready (a DECA takes seconds to load)
        compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
        num_gpus=gpus or None,
        num_cpus=cpus,
        scheduling_strategy="SPREAD",
    )


def _quiet_ray_data(ray) -> None:
    """decaenv's progress bar and summary, not Ray Data's: its bars off (and the warning that says so), its
    execution log at INFO only with `-v`; its warnings stay."""
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    if not log.isEnabledFor(logging.INFO):
        logging.getLogger("ray.data").setLevel(logging.WARNING)


def run_on_ray(options, engine: str, address: Optional[str] = None, on_item: Optional[Callable] = None):
    """`RayJob(options, engine, address).run(on_item)`."""
    return RayJob(options, engine, address).run(on_item)


def _require_ray(load: bool = True):
    """The `ray` module with `ray.data` imported (`load` False: only checks that Ray is installed).

    Raises:
        UsageError: Ray is not installed (or does not import).
    """
    import importlib.util

    hint = "pip install 'decaenv[ray]'"
    if not load:
        if importlib.util.find_spec("ray") is None:
            raise UsageError("--engine ray needs Ray (No module named 'ray')", hint=hint)
        return None
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise UsageError(f"--engine ray needs Ray ({exc})", hint=hint) from exc
    return ray


def _workers(ray) -> tuple:
    """(number of DECA workers, GPUs per worker, CPUs per worker): one per GPU, else one per node."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return gpus, 1, 1
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = resources.get("CPU", 1.0)
    return max(1, len(nodes)), 0, max(0.25, min(1.0, cpus / max(1, len(nodes)) / 2))

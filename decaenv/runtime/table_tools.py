"""Looking after a dataset run's tables (`decaenv table`): how far each run or shard is and why items failed
(`table_status`, read while they run: journals included), and every table as one Parquet file
(`merge_tables`). Nothing here writes into the tables or their journals.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from decaenv.errors import DataError, UsageError
from decaenv.runtime.table import (
    SPLIT_KEY,
    _journal_batches,
    _with_journal,
    existing_tables,
    journal_path,
    one_row_per_name,
    require_pyarrow,
    shard_of,
    written_at,
)


@dataclass(frozen=True)
class TableState:
    """One table (a run's or a shard's) as its run left it so far.

    Attributes:
        path: the Parquet file (it may not exist yet: a run still in its first batches, or killed in them).
        ok, failed: its rows by status, the journal's included. journaled: rows only in the journal (the run
        still going, or killed: `--skip-existing` folds them in). modified: seconds since the epoch of the last
        write to the table or its journal.
    """

    path: str
    ok: int
    failed: int
    journaled: int
    modified: float

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


def table_status(path: os.PathLike, limit: int = 10) -> Tuple[List[TableState], List[Tuple[int, str]], int]:
    """The state of every table at `path` (a table, or a folder of them), the `limit` most frequent reasons
    items failed as (count, message with each item's own file written `<source>`), most frequent first, and how
    many items have rows in more than one table (the job run again under another split: `read_codes` and
    `merge_tables` keep one row of each); each table read once.

    Raises:
        UsageError: pyarrow missing. DataError: no table there, or one unreadable.
    """
    pa = require_pyarrow()
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    states: List[TableState] = []
    reasons: Counter = Counter()
    names = []
    for file in existing_tables(Path(path)):
        journal = journal_path(file)
        journaled = sum(batch.num_rows for batch in _journal_batches(journal)) if journal.is_file() else 0
        table = _read(pa, pq, file, ["source", "status", "error"])
        if table is not None:
            names += table.column("name").chunks
        columns = [table.column(k).to_pylist() for k in ("source", "status", "error")] if table is not None else []
        statuses: Counter = Counter()
        for source, status, error in zip(*columns):
            statuses[status] += 1
            if status != "ok":
                reasons[(error or "").replace(source, "<source>") if source else (error or "")] += 1
        states.append(TableState(str(file), statuses["ok"], statuses["failed"], journaled, written_at(file)))
    every = pa.chunked_array(names, pa.string())
    repeated = len(every) - pc.count_distinct(every).as_py() if len(states) > 1 else 0
    return states, [(count, reason) for reason, count in reasons.most_common(limit)], repeated


def missing_shards(states: Sequence[TableState]) -> Dict[int, List[int]]:
    """{N: [K, ...]}: the shards K of an N-way split (`codes-K-of-N.parquet`) that have no table or journal yet
    (not started, or still before their first batch), for every N seen among the tables."""
    seen: Dict[int, set] = {}
    for state in states:
        shard = shard_of(Path(state.path).name)
        if shard is not None:
            seen.setdefault(shard[1], set()).add(shard[0])
    return {n: [k for k in range(n) if k not in ks] for n, ks in sorted(seen.items()) if len(ks) < n}


def merge_tables(path: os.PathLike, out: os.PathLike) -> int:
    """Write every table at `path` (journals included: the newest row of a re-done item) as one Parquet file
    `out`, atomically, one row per item (`table.one_row_per_name`: an item in several tables — runs of one job
    under different splits — keeps its ok row from the table written last); returns its rows.

    Raises:
        UsageError: `out` would be read as one of the tables (a `codes*.parquet` beside them). DataError: no
        table, an unreadable one, or tables of different columns (landmarks in some only).
    """
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    source, target = Path(path), Path(out)
    files = existing_tables(source)
    folder = source if source.is_dir() else source.parent
    if target.resolve().parent == folder.resolve() and target.name.startswith("codes") and target.suffix == ".parquet":
        raise UsageError(
            f"{target} would be read back as one more table of {folder}",
            hint="write it to another folder, or give it a name that does not start with 'codes'",
        )
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    rows, schema = 0, None
    listed = [(file, _read(pa, pq, file, ["status"])) for file in files]  # names and statuses: which rows to keep
    masks = one_row_per_name(pa, [(file, part) for file, part in listed if part is not None])
    keep = dict(zip([file for file, part in listed if part is not None], masks)) if masks is not None else {}
    try:
        writer: Optional[pq.ParquetWriter] = None
        for file in files:
            table = _read(pa, pq, file, None)
            if table is None:
                continue
            if file in keep:
                table = table.filter(keep[file])
            if schema is None:  # (a shard's split is no longer the merged file's)
                metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != SPLIT_KEY}
                schema = table.schema.with_metadata(metadata)
                writer = pq.ParquetWriter(str(tmp), schema, compression="zstd")
            elif table.schema.names != schema.names:
                raise DataError(
                    f"{file} has other columns than {files[0]} (landmarks in some tables only?)",
                    hint="merge the tables of one kind at a time",
                    path=file,
                )
            assert writer is not None
            writer.write_table(table.cast(schema))
            rows += table.num_rows
        if writer is None:
            raise DataError(f"the tables at {source} have no rows yet", path=source)
        writer.close()
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def age(seconds_since_epoch: float, now: Optional[float] = None) -> str:
    """'12 s', '4 min', '3 h', '2 d' ago."""
    elapsed = max(0.0, (time.time() if now is None else now) - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if elapsed >= size:
            return f"{elapsed // size:.0f} {unit}"
    return f"{elapsed:.0f} s"


def _read(pa, pq, file: Path, columns: Optional[Sequence[str]]):
    try:
        return _with_journal(pa, pq, file, columns)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{file} is not a readable Parquet table ({exc})", path=file) from exc

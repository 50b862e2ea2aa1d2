"""`--save table`: one Parquet file per run or shard (`codes.parquet`, `codes-K-of-N.parquet`), one row per item.

Columns: name, source, frame (-1 for images), status ("ok"/"failed"), error, crop_source, box (4), tform (9,
the crop matrix P row-major), original_size (h, w), every code (shape 100, tex 50, exp 50, pose 6, cam 3,
light 27 = 9 bands × RGB, detail 128; float32, null on failed rows) and, with landmarks, landmarks2d (68×2)
and landmarks3d (68×3) flattened.

Crash safety: a Parquet file is readable only once its footer is written at close, so while the run goes the
rows are appended as Arrow IPC record batches (one per batch, flushed) to a journal next to the table
(`.codes….parquet.journal`), which stays readable up to its last complete batch when the process is killed.
When the run ends (or is interrupted, or a later run resumes) the journal is streamed into the Parquet file
as row groups, after the rows already there, and removed. pyarrow is an optional extra (`decaenv[table]`).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from decaenv.errors import DataError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

CODE_COLUMNS: Tuple[Tuple[str, int], ...] = (
    ("shape", 100),
    ("tex", 50),
    ("exp", 50),
    ("pose", 6),
    ("cam", 3),
    ("light", 27),
    ("detail", 128),
)
LANDMARK_COLUMNS: Tuple[Tuple[str, int], ...] = (("landmarks2d", 136), ("landmarks3d", 204))
TABLE_SCHEMA = "decaenv-table-1"
#: Schema metadata key of a shard's table: how its split deals video frames (`split_in`).
SPLIT_KEY = b"shard_split"
#: Rows per Parquet row group when the journal is folded in.
ROW_GROUP_ROWS = 1024


def require_pyarrow():
    """Import pyarrow (+ parquet, ipc) or raise a one-line UsageError naming the extra."""
    try:
        import pyarrow as pa
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError as exc:
        raise UsageError(f"--save table needs pyarrow ({exc})", hint="pip install 'decaenv[table]'") from exc
    return pa


def table_path(out_dir: Path, suffix: str = "") -> Path:
    """`<out>/codes.parquet`, or `<out>/codes-K-of-N.parquet` for a shard (suffix from `Shard.suffix`)."""
    return Path(out_dir) / f"codes{suffix}.parquet"


def journal_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.journal")


def schema(landmarks: bool, split: Optional[str] = None):
    """The table's Arrow schema; `split`: how the shards of an N-way split deal video frames (`shard.Shard.split`),
    kept in the metadata of a shard's table."""
    pa = require_pyarrow()
    fields = [
        pa.field("name", pa.string()),
        pa.field("source", pa.string()),
        pa.field("frame", pa.int64()),
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        pa.field("crop_source", pa.string()),
        pa.field("box", pa.list_(pa.float64(), 4)),
        pa.field("tform", pa.list_(pa.float64(), 9)),
        pa.field("original_size", pa.list_(pa.int64(), 2)),
    ]
    columns = CODE_COLUMNS + (LANDMARK_COLUMNS if landmarks else ())
    fields += [pa.field(name, pa.list_(pa.float32(), size)) for name, size in columns]
    metadata = {b"schema": TABLE_SCHEMA.encode()}
    if split is not None:
        metadata[SPLIT_KEY] = split.encode()
    return pa.schema(fields, metadata=metadata)


def split_in(folder: Path, count: int, first: Optional[Path] = None) -> Optional[str]:
    """How the tables of an N-way split (`codes-K-of-N.parquet`, journals included) already in `folder` deal video
    frames to shards: the value they were written with, `shard.LEGACY_SPLIT` for one from before pieces that holds
    video frames, None when none says. Tables are asked in turn (`first` first) until one says: a split's
    tables all say the same, so a task of a large array reads one table's schema, not every table's."""
    tables = [t for t in _tables_in(Path(folder)) if (shard_of(t.name) or (None, None))[1] == count]
    if first is not None and first in tables:
        tables.remove(first)
        tables.insert(0, first)
    for path in tables:
        mark = _split_mark(path)
        if mark is not None:
            return mark
    return None


def _split_mark(path: Path) -> Optional[str]:
    """One table's split (`split_in`), from its schema's metadata or, unmarked, from whether it holds video frames
    (tables of an earlier decaenv; read whole)."""
    from decaenv.runtime.shard import LEGACY_SPLIT

    pa = require_pyarrow()
    import pyarrow.parquet as pq

    journal = journal_path(path)
    try:
        if path.is_file():
            stored = pq.read_schema(str(path))
        elif journal.is_file():
            with pa.memory_map(str(journal)) as source:
                stored = pa.ipc.open_stream(source).schema
        else:
            return None
    except (OSError, pa.ArrowInvalid):
        return None  # (reading the table reports it)
    mark = (stored.metadata or {}).get(SPLIT_KEY)
    if mark is not None:
        return mark.decode()
    frames = read_table_column(path, "frame") if path.is_file() else []
    if journal.is_file():
        frames += [f for batch in _journal_batches(journal) for f in batch.column("frame").to_pylist()]
    return LEGACY_SPLIT if any(isinstance(f, int) and f >= 0 for f in frames) else None


def make_row(
    name: str,
    source: str,
    frame: Optional[int],
    status: str,
    error: str = "",
    *,
    crop_source: str = "",
    box=None,
    tform=None,
    original_size=None,
    codes: Optional[Mapping[str, np.ndarray]] = None,
    landmarks: Optional[Mapping[str, np.ndarray]] = None,
) -> Dict[str, object]:
    """One row (plain Python/numpy values; codes as float32 arrays, None on failed rows)."""
    row: Dict[str, object] = {
        "name": name,
        "source": source,
        "frame": -1 if frame is None else int(frame),
        "status": status,
        "error": error,
        "crop_source": crop_source,
        "box": None if box is None else [float(v) for v in box],
        "tform": None if tform is None else np.asarray(tform, np.float64).reshape(-1),
        "original_size": None if original_size is None else [int(v) for v in original_size],
    }
    for key, _size in CODE_COLUMNS + LANDMARK_COLUMNS:
        value = (codes or {}).get(key) if key not in dict(LANDMARK_COLUMNS) else (landmarks or {}).get(key)
        row[key] = None if value is None else np.asarray(value, np.float32).reshape(-1)
    return row


def rows_to_batch(rows: Sequence[Mapping[str, object]], landmarks: bool):
    """Rows → one Arrow RecordBatch of `schema(landmarks)`."""
    pa = require_pyarrow()
    target = schema(landmarks)
    arrays = []
    for field in target:
        values = [row.get(field.name) for row in rows]
        if pa.types.is_fixed_size_list(field.type):
            size = field.type.list_size
            flat = (
                np.concatenate(
                    [
                        np.asarray(v, dtype=field.type.value_type.to_pandas_dtype()).reshape(-1)
                        if v is not None
                        else np.zeros(size, field.type.value_type.to_pandas_dtype())
                        for v in values
                    ]
                )
                if values
                else np.zeros(0)
            )
            mask = pa.array([v is None for v in values], pa.bool_())
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, field.type.value_type), size, mask=mask))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _journal_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The complete record batches of a journal (a truncated tail from a killed run is ignored)."""
    pa = require_pyarrow()
    try:
        source = pa.memory_map(str(path))
        reader = pa.ipc.open_stream(source)
    except (OSError, pa.ArrowInvalid):
        return
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
        except (OSError, pa.ArrowInvalid):
            return


class TableWriter:
    """Appends rows to a run's/shard's table; see the module docstring for the journal.

    Args:
        path: the Parquet file. landmarks: add the landmark columns. split: a shard's `Shard.split` (metadata).
    Raises:
        UsageError: pyarrow missing. DataError: an existing table with other columns.
    """

    def __init__(self, path: Path, landmarks: bool = False, split: Optional[str] = None):
        self.pa = require_pyarrow()
        self.path, self.journal = Path(path), journal_path(Path(path))
        self.landmarks = landmarks
        self.schema = schema(landmarks, split)
        self._stream: Optional[pa.RecordBatchStreamWriter] = None
        self._sink: Optional[BinaryIO] = None
        self._lock = threading.Lock()  # rows come from the run's thread (failures) and the writing thread
        self.finalize()  # a journal left by a killed run joins the table first

    def done_names(self) -> Set[str]:
        """Names with status ok in this table or in the folder's tables of other splits (what `--skip-existing`
        skips): after a job is resubmitted with another shard count, or unsharded, what any run did counts. The
        other tables of this table's own split are not read (their items are other shards'), so a task of a
        large array reads its own table and those of other splits, if any."""
        own = (
            {str(name) for name in read_table_column(self.path, "name", status="ok")} if self.path.is_file() else set()
        )
        return own | done_elsewhere(self.path)

    def add(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Journal rows now (flushed to the OS: a killed process keeps them)."""
        if not rows:
            return
        batch = rows_to_batch(rows, self.landmarks)
        with self._lock:
            stream, sink = self._journal_stream()
            stream.write_batch(batch)
            sink.flush()

    def add_table(self, records: pa.Table) -> None:
        """Journal an Arrow table of rows already in this table's schema (from a Ray worker)."""
        with self._lock:
            stream, sink = self._journal_stream()
            for batch in records.cast(self.schema).to_batches():
                stream.write_batch(batch)
            sink.flush()

    def _journal_stream(self) -> Tuple[pa.RecordBatchStreamWriter, BinaryIO]:
        """The journal's Arrow stream and file, opened (for appending) on first use. Call with `_lock` held."""
        if self._stream is None or self._sink is None:
            self._sink = open(self.journal, "ab")
            self._stream = self.pa.ipc.new_stream(self._sink, self.schema)
        return self._stream, self._sink

    def close(self) -> None:
        """Fold the journal into the Parquet file (atomically) and remove it."""
        if self._stream is not None:
            self._stream.close()
        if self._sink is not None:
            self._sink.close()
        self._stream = self._sink = None
        self.finalize()

    def finalize(self) -> None:
        """Write `path` = its current rows, less those of names the journal holds again (re-done items replace
        their old rows), + the journal's rows, as row groups; then remove the journal. Memory: one row group
        and the journal's names."""
        if not self.journal.is_file():
            return
        pq = __import__("pyarrow.parquet", fromlist=["parquet"])
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        redone = set()
        if self.path.is_file():
            for batch in _journal_batches(self.journal):
                redone.update(batch.column(0).to_pylist())
        try:
            with pq.ParquetWriter(str(tmp), self.schema, compression="zstd") as writer:
                if self.path.is_file():
                    self._copy_old_rows(pq, writer, redone)
                pending: List[pa.RecordBatch] = []
                count = 0
                for batch in _journal_batches(self.journal):
                    pending.append(batch)
                    count += batch.num_rows
                    if count >= ROW_GROUP_ROWS:
                        writer.write_table(self.pa.Table.from_batches(pending, self.schema))
                        pending, count = [], 0
                if pending:
                    writer.write_table(self.pa.Table.from_batches(pending, self.schema))
            os.replace(tmp, self.path)
            self.journal.unlink()
        finally:
            if tmp.exists():
                tmp.unlink()

    def _copy_old_rows(self, pq, writer, redone: Set[str]) -> None:
        old = pq.ParquetFile(str(self.path))
        if old.schema_arrow.names != self.schema.names:
            raise DataError(
                f"table {self.path} has other columns than this run writes (landmarks on/off?)",
                hint="write to another folder, or remove the table",
            )
        for group in range(old.num_row_groups):
            table = old.read_row_group(group)
            if redone:
                keep = [name not in redone for name in table.column("name").to_pylist()]
                table = table.filter(self.pa.array(keep, self.pa.bool_()))
            if table.num_rows:
                writer.write_table(table.cast(self.schema))


def done_elsewhere(table: Path) -> Set[str]:
    """Names with an ok row (journals included) in the tables beside `table` that are not of its split
    (`codes-K-of-N.parquet` with the same N; `codes.parquet` is a split of one)."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    own = shard_of(table.name)
    names: Set[str] = set()
    for other in _tables_in(table.parent):
        theirs = shard_of(other.name)
        if other == table or (own is not None and theirs is not None and theirs[1] == own[1]):
            continue
        try:
            rows = _with_journal(pa, pq, other, ["status"])
        except (OSError, pa.ArrowInvalid):
            continue  # (reading the table itself reports it)
        if rows is not None:
            ok = [s == "ok" for s in rows.column("status").to_pylist()]
            names.update(str(n) for n, good in zip(rows.column("name").to_pylist(), ok) if good)
    return names


def shard_of(name: str) -> Optional[Tuple[int, int]]:
    """(K, N) of a shard's table name `codes-K-of-N.parquet` (`table_path`); None for any other name."""
    match = re.fullmatch(r"codes-(\d+)-of-(\d+)\.parquet", name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def read_table_column(path: Path, column: str, status: Optional[str] = None) -> List[object]:
    """One column of a table (rows of one status, or all), streamed by row group."""
    require_pyarrow()
    import pyarrow.parquet as pq

    out: List[object] = []
    handle = pq.ParquetFile(str(path))
    for group in range(handle.num_row_groups):
        table = handle.read_row_group(group, columns=[column, "status"])
        values, statuses = table.column(column).to_pylist(), table.column("status").to_pylist()
        out += [v for v, s in zip(values, statuses) if status is None or s == status]
    return out


def _fixed(column, size: int, dtype) -> np.ndarray:
    """A fixed-size-list column → (N, size) array; null entries (failed rows, no box) become NaN / -1."""
    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if array.null_count == 0:
        return np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=dtype).reshape(-1, size)
    fill = [np.nan if np.issubdtype(dtype, np.floating) else -1] * size
    return np.asarray([v if v is not None else fill for v in array.to_pylist()], dtype=dtype).reshape(-1, size)


def _tables_in(path: Path) -> List[Path]:
    """The tables a path names: itself, or a folder's `codes*.parquet` files and those whose only rows so far are
    in a journal (a run still going, or killed before its first fold)."""
    if not path.is_dir():
        return [path]
    journaled = {j.with_name(j.name[1 : -len(".journal")]) for j in path.glob(".codes*.parquet.journal")}
    return sorted(set(path.glob("codes*.parquet")) | journaled)


def existing_tables(path: Path) -> List[Path]:
    """The tables at `path` with rows or a journal (`_tables_in`). Raises DataError: none."""
    files = [f for f in _tables_in(path) if f.is_file() or journal_path(f).is_file()]
    if not files:
        raise DataError(f"no decaenv table at {path}", hint="pass a codes*.parquet file or its folder", path=path)
    return files


def _with_journal(pa, pq, path: Path, columns: Optional[Sequence[str]] = None) -> Optional[pa.Table]:
    """A table's rows as its run left them: the Parquet file's rows, less those of names its journal holds again,
    + the journal's complete batches (what `TableWriter.finalize` would write; nothing is written here); only
    `columns` (with "name") when given. None: no rows yet."""
    journal = journal_path(path)
    batches = list(_journal_batches(journal)) if journal.is_file() else []
    wanted = None
    if columns is not None:  # those this table has (landmarks are optional)
        stored = pq.read_schema(str(path)).names if path.is_file() else batches[0].schema.names if batches else []
        wanted = [c for c in dict.fromkeys(["name", *columns]) if c in stored]
    old = pq.read_table(str(path), columns=wanted) if path.is_file() else None
    if not batches:
        return old
    fresh = pa.Table.from_batches(batches)
    fresh = fresh if wanted is None else fresh.select(wanted)
    if old is None:
        return fresh
    redone = set(fresh.column("name").to_pylist())
    keep = pa.array([name not in redone for name in old.column("name").to_pylist()], pa.bool_())
    return pa.concat_tables([old.filter(keep), fresh], promote_options="default")


def one_row_per_name(pa, parts: Sequence[Tuple[Path, "pa.Table"]]) -> Optional[List["pa.Array"]]:
    """For tables read from `parts` ((file, rows) — each table already one row per name), a keep-mask per table
    so that every name is kept once: an ok row before a failed one, then the table written last (its file's or
    journal's modification time); None when no name is in two tables (nothing to drop)."""
    import pyarrow.compute as pc

    if len(parts) < 2:
        return None
    names = pa.chunked_array([c for _, part in parts for c in part.column("name").chunks], pa.string())
    if pc.count_distinct(names).as_py() == len(names):
        return None
    order = sorted(range(len(parts)), key=lambda i: written_at(parts[i][0]))
    best: Dict[str, Tuple[bool, int, int]] = {}  # name → (ok, rank of its table, row)
    for rank, i in enumerate(order):
        part = parts[i][1]
        for row, (name, status) in enumerate(zip(part.column("name").to_pylist(), part.column("status").to_pylist())):
            candidate = (status == "ok", rank, row)
            if name not in best or candidate[:2] >= best[name][:2]:
                best[name] = candidate
    keep = [[False] * parts[i][1].num_rows for i in range(len(parts))]
    for _, rank, row in best.values():
        keep[order[rank]][row] = True
    return [pa.array(mask, pa.bool_()) for mask in keep]


def written_at(table: Path) -> float:
    """When a table (or its journal) was last written; 0 when neither exists."""
    stamps = [p.stat().st_mtime for p in (table, journal_path(table)) if p.is_file()]
    return max(stamps, default=0.0)


#: Columns every `read_codes` answer has; the keys computed from `pose` (as in `<name>_codes.npz`).
ITEM_COLUMNS = ("name", "source", "frame", "status", "error", "crop_source")
POSE_KEYS = ("global_pose", "jaw_pose", "neck_pose", "eye_pose", "full_pose")


def read_codes(path: os.PathLike, status: str = "ok", keys: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """The codes of a table as numpy arrays, one row per item (rows of `status`; "all" for every row).

    Keys equal those of `<name>_codes.npz` (shape (N, 100), tex, exp, pose (N, 6), cam, light (N, 9, 3),
    detail, global_pose, jaw_pose, neck_pose, eye_pose, full_pose (N, 15), tform (N, 3, 3) float64,
    original_size (N, 2) int64) plus name, source, frame, status, error, crop_source, box and, when stored,
    landmarks2d (N, 68, 2) / landmarks3d (N, 68, 3). `keys`: only these (and the item columns name … crop_source),
    read from disk alone — for a table of millions of rows, e.g. ("exp", "jaw_pose"). A folder reads every
    `codes*.parquet` in it. The rows of a run still going, or killed, are read from its journal too (every
    complete batch; a re-done item's newer row replaces its older one), so a table can be read while its run
    writes it; nothing is written. An item with rows in several tables of a folder (runs of one job under
    different splits) is read once: its ok row, from the table written last (`one_row_per_name`).

    Raises:
        UsageError: pyarrow missing, or a key no table has. DataError: not a decaenv table.
    """
    pa = require_pyarrow()
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    files = existing_tables(path)
    columns = None if keys is None else _columns_for(keys)
    try:
        read = [(f, _with_journal(pa, pq, f, columns)) for f in files]
        parts = [part for _, part in read if part is not None]
        if not parts:
            raise DataError(f"{path} has no rows yet (its run has not finished a batch)", path=path)
        masks = one_row_per_name(pa, [(f, part) for f, part in read if part is not None])
        parts = parts if masks is None else [part.filter(mask) for part, mask in zip(parts, masks)]
        table = pa.concat_tables(parts, promote_options="default")
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path} is not a readable Parquet table ({exc})", path=path) from exc
    if "status" not in table.column_names or (keys is None and "shape" not in table.column_names):
        raise DataError(f"{path} is not a decaenv codes table (no shape/status columns)", path=path)
    if status != "all":
        table = table.filter(pc.equal(table.column("status"), status))
    out = _arrays(table)
    if keys is None:
        return out
    missing = [k for k in keys if k not in out]
    if missing:
        raise UsageError(f"{path} has no {', '.join(missing)}", hint="landmarks are stored by --table-landmarks runs")
    return {k: v for k, v in out.items() if k in ITEM_COLUMNS or k in keys}


def _columns_for(keys: Sequence[str]) -> List[str]:
    """The table columns that `read_codes`'s `keys` need. Raises UsageError: an unknown key."""
    stored = [name for name, _ in CODE_COLUMNS + LANDMARK_COLUMNS] + ["tform", "original_size", "box"]
    unknown = [k for k in keys if k not in stored and k not in POSE_KEYS and k not in ITEM_COLUMNS]
    if unknown:
        raise UsageError(
            f"no table column {', '.join(unknown)}", hint=f"choose from {', '.join(stored + list(POSE_KEYS))}"
        )
    return list(dict.fromkeys([*ITEM_COLUMNS, *("pose" if k in POSE_KEYS else k for k in keys)]))


def _arrays(table) -> Dict[str, np.ndarray]:
    """`read_codes`'s arrays of the columns `table` has."""
    n, present = table.num_rows, set(table.column_names)
    out: Dict[str, np.ndarray] = {
        k: np.asarray(table.column(k).to_pylist(), dtype=object) for k in ITEM_COLUMNS if k != "frame"
    }
    out["frame"] = np.asarray(table.column("frame").to_pylist(), np.int64)
    for key, size in CODE_COLUMNS:
        if key in present:
            out[key] = _fixed(table.column(key), size, np.float32)
    if "light" in out:
        out["light"] = out["light"].reshape(n, 9, 3)
    if "pose" in out:
        pose, zeros3 = out["pose"], np.zeros((n, 3), np.float32)
        out.update(
            global_pose=pose[:, :3],
            jaw_pose=pose[:, 3:6],
            neck_pose=zeros3,
            eye_pose=np.zeros((n, 6), np.float32),
            full_pose=np.concatenate([pose[:, :3], zeros3, pose[:, 3:6], np.zeros((n, 6), np.float32)], 1),
        )
    for key, size, dtype in (("tform", 9, np.float64), ("original_size", 2, np.int64), ("box", 4, np.float64)):
        if key in present:
            out[key] = _fixed(table.column(key), size, dtype)
    if "tform" in out:
        out["tform"] = out["tform"].reshape(n, 3, 3)
    for key, size in LANDMARK_COLUMNS:
        if key in present:
            out[key] = _fixed(table.column(key), size, np.float32).reshape(n, 68, size // 68)
    return out

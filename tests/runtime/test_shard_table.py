"""Dataset mode: --shard K/N and auto, --save table (Parquet per run/shard, journal, resume), read_codes."""

import json
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

from decaenv.cli import main
from decaenv.errors import DataError, UsageError
from decaenv.runtime.shard import Shard, parse_shard

pa = pytest.importorskip("pyarrow")
from decaenv.runtime.table import TableWriter, journal_path, make_row, read_codes
from tests._support.tables import table_row as _row

CODE_KEYS = (
    "shape",
    "tex",
    "exp",
    "pose",
    "cam",
    "light",
    "detail",
    "global_pose",
    "jaw_pose",
    "neck_pose",
    "eye_pose",
    "full_pose",
    "tform",
    "original_size",
)


# -- shards ------------------------------------------------------------------------------------------------
def test_shard_k_of_n_partitions_every_position():
    shards = [parse_shard(f"{k}/3") for k in range(3)]
    for position in range(20):
        assert sum(s.owns(position) for s in shards) == 1
    assert shards[1].suffix == "-1-of-3" and parse_shard("0/1").suffix == ""
    assert parse_shard(None) is None


def test_a_shard_knows_its_share_of_the_items():
    for count in (1, 2, 3, 7):
        for total in (0, 1, 5, 20, 21):
            shares = [Shard(k, count).share(total) for k in range(count)]
            assert shares == [sum(Shard(k, count).owns(p) for p in range(total)) for k in range(count)]
            assert sum(shares) == total


@pytest.mark.parametrize("bad", ["3/3", "-1/2", "1/0", "a/b", "2", "1/2/3"])
def test_bad_shard_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        parse_shard(bad)


def test_shard_auto_reads_launchers():
    assert parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}) == Shard(
        2, 4, "Slurm job array: SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT"
    )
    one_based = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}
    assert parse_shard("auto", one_based).index == 3
    stepped = {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_STEP": "2"}
    assert parse_shard("auto", stepped).index == 3
    assert parse_shard("auto", {"RANK": "1", "WORLD_SIZE": "2"}).index == 1
    assert parse_shard("auto", {}).count == 1
    with pytest.raises(UsageError, match="out of range"):
        parse_shard("auto", {"RANK": "2", "WORLD_SIZE": "2"})


# -- the table's journal -----------------------------------------------------------------------------------
def test_killed_run_keeps_finished_rows_and_resume_folds_them_in(tmp_path):
    path = tmp_path / "codes.parquet"
    writer = TableWriter(path)
    writer.add([_row("a", 1.0), _row("b", 2.0)])
    writer.add([_row("c", 3.0)])
    writer._sink.flush()
    # killed here: no footer, only the journal; cut its last batch in half like a kill mid-write
    journal = journal_path(path)
    size = journal.stat().st_size
    writer._sink.close()
    with open(journal, "r+b") as fh:
        fh.truncate(size - 100)
    assert not path.exists()
    resumed = TableWriter(path)  # folds the journal's complete batches in
    assert not journal.exists() and resumed.done_names() == {"a", "b"}
    resumed.add([_row("c", 3.0), make_row("d", "/in/d.png", None, "failed", "no face found")])
    resumed.close()
    codes = read_codes(path)
    assert list(codes["name"]) == ["a", "b", "c"] and codes["light"].shape == (3, 9, 3)
    assert np.all(codes["shape"][2] == 3.0) and codes["tform"].shape == (3, 3, 3)
    every = read_codes(path, status="all")
    assert list(every["status"]) == ["ok", "ok", "ok", "failed"] and np.isnan(every["shape"][3]).all()


def test_read_codes_reads_the_rows_of_a_run_still_going_or_killed(tmp_path):
    path = tmp_path / "codes.parquet"
    first = TableWriter(path)
    first.add([_row("a", 1.0), _row("b", 2.0)])
    first.close()
    running = TableWriter(path)  # a second run, still going: its rows are only in the journal
    running.add([_row("b", 7.0), _row("c", 3.0)])
    running.add([_row("d", 4.0)])
    journal = journal_path(path)
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    for where in (path, tmp_path):
        codes = read_codes(where)
        assert list(codes["name"]) == ["a", "b", "c", "d"]  # b re-done: its newer row replaces the older one
        assert codes["shape"][1][0] == 7.0 and codes["shape"][3][0] == 4.0
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before  # reading writes nothing
    size = journal.stat().st_size
    with open(journal, "r+b") as fh:  # killed mid-write: the torn batch is not read
        fh.truncate(size - 100)
    assert list(read_codes(path)["name"]) == ["a", "b", "c"]
    running._sink.close()
    # a shard killed before its table's first fold sits beside a finished one; one with no batch yet adds nothing
    shard = TableWriter(tmp_path / "codes-1-of-2.parquet")
    shard.add([_row("e", 5.0)])
    journal_path(tmp_path / "codes-2-of-3.parquet").write_bytes(b"")
    assert list(read_codes(tmp_path)["name"]) == ["e", "a", "b", "c"]  # tables in file-name order
    empty = tmp_path / "empty"
    empty.mkdir()
    journal_path(empty / "codes.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="no rows yet"):
        read_codes(empty)


def test_read_codes_reads_only_the_keys_asked_for(tmp_path):
    path = tmp_path / "codes.parquet"
    writer = TableWriter(path)
    writer.add([_row("a", 1.0), make_row("b", "/in/b.png", None, "failed", "no face found")])
    writer.close()
    running = TableWriter(path)
    running.add([_row("c", 3.0)])  # in the journal only
    every = read_codes(path, status="all")
    some = read_codes(path, status="all", keys=("exp", "jaw_pose", "tform"))
    assert set(some) == {"name", "source", "frame", "status", "error", "crop_source", "exp", "jaw_pose", "tform"}
    for key in ("name", "status", "exp", "jaw_pose", "tform"):
        assert np.array_equal(some[key], every[key], equal_nan=key != "name" and key != "status"), key
    assert list(some["name"]) == ["a", "b", "c"]
    with pytest.raises(UsageError, match="no table column nose"):
        read_codes(path, keys=("nose",))
    with pytest.raises(UsageError, match="has no landmarks2d"):
        read_codes(path, keys=("landmarks2d",))
    running._sink.close()


def test_read_codes_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="no decaenv table"):
        read_codes(tmp_path)
    (tmp_path / "codes.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Parquet table"):
        read_codes(tmp_path / "codes.parquet")


# -- end to end --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    base = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.Resampling.BOX))
    for k in range(3):
        Image.fromarray(np.ascontiguousarray(np.roll(base, 9 * k, axis=1))).save(folder / f"p{k}.png")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(folder / "p3_noface.png")
    return folder


def run(capsys, data_dir, *args):
    code = main(
        [
            "--data-dir",
            str(data_dir),
            "reconstruct",
            "--rasterizer",
            "torch",
            "--detector",
            "mtcnn",
            "--json",
            *map(str, args),
        ]
    )
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory, reconstruct_data_dir, photos):
    """One unsharded run writing the table (with landmarks) and the per-item codes and landmark files."""
    out = tmp_path_factory.mktemp("whole")
    code = main(
        [
            "--data-dir",
            str(reconstruct_data_dir),
            "-q",
            "reconstruct",
            "--rasterizer",
            "torch",
            "--detector",
            "mtcnn",
            "-i",
            str(photos),
            "-o",
            str(out),
            "--save",
            "codes,kpt,table",
            "--table-landmarks",
            "--batch-size",
            "2",
        ]
    )
    return code, out


@pytest.mark.slow
def test_table_codes_equal_the_npz_files(whole_run):
    code, out = whole_run
    assert code == 1  # the no-face image failed; the others are in the table
    codes = read_codes(out / "codes.parquet")
    assert sorted(codes["name"]) == ["p0", "p1", "p2"]
    for i, name in enumerate(codes["name"]):
        npz = np.load(out / name / f"{name}_codes.npz")
        for key in CODE_KEYS:
            assert np.array_equal(codes[key][i], npz[key]), key
    assert codes["landmarks2d"].shape == (3, 68, 2) and codes["landmarks3d"].shape == (3, 68, 3)
    for i, name in enumerate(codes["name"]):  # the table's landmarks are the kpt files' values
        for key, stem in (("landmarks2d", "kpt2d"), ("landmarks3d", "kpt3d")):
            kpt = np.loadtxt(out / name / f"{name}_{stem}.txt").astype(np.float32)
            assert np.array_equal(codes[key][i], kpt[:, : codes[key].shape[2]]), (name, key)  # (kpt3d: 4th col 1)
    failed = read_codes(out / "codes.parquet", status="failed")
    assert list(failed["name"]) == ["p3_noface"] and "no face found" in failed["error"][0]


@pytest.mark.slow
def test_shards_share_a_folder_write_only_their_tables_and_resume(
    tmp_path, capsys, reconstruct_data_dir, photos, whole_run, monkeypatch
):
    out = tmp_path / "out"
    for k in (0, 1):
        code, summary, err = run(
            capsys,
            reconstruct_data_dir,
            "-i",
            photos,
            "-o",
            out,
            "--save",
            "table",
            "--shard",
            f"{k}/2",
            "--batch-size",
            "2",
        )
        assert code in (0, 1), err
        assert summary["table"].endswith(f"codes-{k}-of-2.parquet")
    assert sorted(p.name for p in out.iterdir()) == [
        "codes-0-of-2.parquet",
        "codes-1-of-2.parquet",
    ]  # no per-item files
    sharded, whole = read_codes(out), read_codes(whole_run[1] / "codes.parquet")
    order = np.argsort(sharded["name"])
    assert list(sharded["name"][order]) == list(whole["name"])
    assert np.allclose(sharded["shape"][order], whole["shape"], rtol=1e-5, atol=1e-7)
    # a finished shard reruns without loading any network
    import decaenv.runtime.pipeline as pipeline

    monkeypatch.setattr(pipeline, "build_deca", lambda options: pytest.fail("a network was loaded"))
    code, summary, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        photos,
        "-o",
        out,
        "--save",
        "table",
        "--shard",
        "0/2",
        "--skip-existing",
        "--batch-size",
        "2",
    )
    assert summary["skipped"] == 2 and summary["ok"] == 0, err  # p0, p2 done; shard 0 has no failed row left
    assert code == 0


def test_a_finished_run_reruns_without_importing_torch(tmp_path, reconstruct_data_dir, photos):
    """`--skip-existing` on a finished table decides that nothing is left before anything imports torch, so a
    finished shard reruns in about the CLI's start-up time (0.24-0.27 s here, 1.3-1.6 s while it imported torch)."""
    out = tmp_path / "out"
    out.mkdir()
    writer = TableWriter(out / "codes.parquet")
    writer.add([_row(name, 0.5) for name in ("p0", "p1", "p2", "p3_noface")])
    writer.close()
    script = "import sys\nfrom decaenv.cli import main\ncode = main(sys.argv[1:])\nprint(code, 'torch' in sys.modules)"
    argv = ["--data-dir", reconstruct_data_dir, "reconstruct", "-i", photos, "-o", out, "--save", "table"]
    command = [sys.executable, "-c", script, *map(str, argv), "--skip-existing", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    *report, last = done.stdout.strip().splitlines()
    assert last == "0 False", done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads("\n".join(report))["skipped"] == 4


@pytest.mark.slow
def test_resume_after_a_kill_runs_only_what_is_left(tmp_path, capsys, reconstruct_data_dir, photos):
    out = tmp_path / "out"
    out.mkdir()
    writer = TableWriter(out / "codes.parquet")
    writer.add([_row("p0", 0.5)])  # a run killed after its first row: only the journal exists
    writer._sink.close()
    code, summary, err = run(
        capsys, reconstruct_data_dir, "-i", photos, "-o", out, "--save", "table", "--skip-existing", "--batch-size", "4"
    )
    assert summary["skipped"] == 1 and summary["ok"] == 2 and summary["failed"] == 1, err
    codes = read_codes(out / "codes.parquet", status="all")
    assert sorted(codes["name"]) == ["p0", "p1", "p2", "p3_noface"]
    assert not journal_path(out / "codes.parquet").exists()


def test_redone_items_replace_their_rows(tmp_path):
    path = tmp_path / "codes.parquet"
    first = TableWriter(path)
    first.add([_row("a", 1.0), make_row("b", "/in/b.png", None, "failed", "no face found")])
    first.close()
    again = TableWriter(path)
    again.add([_row("b", 2.0), _row("a", 5.0)])
    again.close()
    codes = read_codes(path, status="all")
    assert sorted(codes["name"]) == ["a", "b"] and set(codes["status"]) == {"ok"}
    assert codes["shape"][list(codes["name"]).index("a")][0] == 5.0


def test_shards_hold_separate_output_locks(tmp_path):
    from decaenv.runtime.guards import OutputLock

    with OutputLock(tmp_path, scope="-0-of-2"), OutputLock(tmp_path, scope="-1-of-2"):
        with pytest.raises(UsageError, match="in use"):
            with OutputLock(tmp_path, scope="-0-of-2"):
                pass


def test_the_progress_bar_counts_only_this_shards_items(tmp_path, monkeypatch):
    import io
    from functools import partial
    from types import SimpleNamespace

    from rich.console import Console
    from rich.progress import Progress

    from decaenv.cli._runs import run_with_progress
    from decaenv.runtime.pipeline import Reconstructor

    for k in range(5):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / f"p{k}.png")
    totals = []
    add_task = Progress.add_task

    def recording(self, description, *args, total=None, **kwargs):
        totals.append(total)
        return add_task(self, description, *args, total=total, **kwargs)

    monkeypatch.setattr(Progress, "add_task", recording)
    for shard, expected in ((None, 5), (Shard(0, 2), 3), (Shard(1, 2), 2)):
        runner = SimpleNamespace(
            options=SimpleNamespace(inputs=[tmp_path], shard=shard, sample_step=1), run=lambda on_item: "ran"
        )
        runner.expected_items = partial(Reconstructor.expected_items, runner)  # the real count, on the stand-in
        runner._count_items = partial(Reconstructor._count_items, runner)
        console = Console(file=io.StringIO())
        assert run_with_progress(console, runner.expected_items(), "reconstructing", runner.run) == "ran"
        assert totals[-1] == expected

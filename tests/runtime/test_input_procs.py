"""Preparing items in worker processes (`--input-workers processes`, what `auto` picks beside a GPU): the same
outcomes, failure messages and codes as threads, in input order; resuming skips without the workers; where
processes cannot be used (FAN, `--faces all`, `--smooth`) threads are; a worker that cannot start ends the run
with one line; the flag's values are checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import skimage.data
from _support.runs import codes_options, write_mixed_folder
from PIL import Image

from decaenv.errors import DecaenvError, UsageError
from decaenv.runtime.input_procs import PrepareSpec, ProcessInputPool
from decaenv.runtime.overlap import MAX_INPUT_WORKERS, input_workers, parse_input_workers

pytestmark = pytest.mark.slow  # each run spawns interpreters that import torch: `make test` only


def test_input_workers_values():
    assert parse_input_workers("auto") == ("auto", None)
    assert parse_input_workers("Processes") == ("processes", None)
    assert parse_input_workers("threads:3") == ("threads", 3)
    assert parse_input_workers("processes:12") == ("processes", 12)
    for bad in ("proc", "threads:0", "processes:x", "auto:2", "threads:-1", "processes:"):
        with pytest.raises(UsageError, match="--input-workers"):
            parse_input_workers(bad)


def test_processes_are_not_capped_like_threads():
    assert input_workers("cuda:0", True, cpus=16) == MAX_INPUT_WORKERS
    assert input_workers("cuda:0", True, cpus=16, processes=True) == 15
    assert input_workers("cuda", True, cpus=1, processes=True) == 1
    assert input_workers("cpu", False, cpus=2, processes=True) == 2


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_mixed_folder(tmp_path_factory.mktemp("proc-photos"))


def _options(data_dir, folder, out, workers, **extra):
    return codes_options(data_dir, folder, out, input_workers=workers, **{"save": ["codes", "table"], **extra})


def _run(deca, data_dir, folder, out, workers, monkeypatch, **extra):
    from decaenv.runtime.pipeline import Reconstructor

    runner = Reconstructor(_options(data_dir, folder, out, workers, **extra), deca=deca)
    sent = []
    real_map = ProcessInputPool.map

    def spy(self, items):
        sent.append((self.workers, [item.name for item in items]))
        return real_map(self, items)

    monkeypatch.setattr(ProcessInputPool, "map", spy)
    try:
        return runner.run(), sent
    finally:
        runner.close()


def test_a_run_in_processes_equals_one_in_threads(
    deca, reconstruct_data_dir, folder, tmp_path, monkeypatch, one_torch_thread
):
    procs, sent = _run(deca, reconstruct_data_dir, folder, tmp_path / "procs", "processes", monkeypatch)
    threads, none_sent = _run(deca, reconstruct_data_dir, folder, tmp_path / "threads", "threads:2", monkeypatch)
    assert none_sent == []
    # the broken file was not sent twice: the listing does not know it is broken, the worker reads it
    assert sent == [(2, ["p0", "p1", "p1b_broken"]), (2, ["p2", "p2b_noface", "p3"])]
    expected = [(o.name, o.status, o.message) for o in threads.items]
    assert [(o.name, o.status, o.message) for o in procs.items] == expected
    assert ("p1b_broken", "failed") in [(n, s) for n, s, _ in expected]
    assert any("no face found" in m for _, _, m in expected)
    for stage in ("read", "detect", "crop", "encode"):
        assert procs.stages[stage] > 0, stage
    for name in ("p0", "p1", "p2", "p3"):
        a = np.load(tmp_path / "procs" / name / f"{name}_codes.npz")
        b = np.load(tmp_path / "threads" / name / f"{name}_codes.npz")
        for key in b.files:
            assert np.array_equal(a[key], b[key]), (name, key)
        meta_a = json.loads((tmp_path / "procs" / name / f"{name}_codes.json").read_text())
        meta_b = json.loads((tmp_path / "threads" / name / f"{name}_codes.json").read_text())
        assert meta_a == meta_b
    from decaenv.runtime import read_codes

    rows_a, rows_b = (
        read_codes(tmp_path / "procs" / "codes.parquet"),
        read_codes(tmp_path / "threads" / "codes.parquet"),
    )
    assert list(rows_a["name"]) == list(rows_b["name"]) and list(rows_a["status"]) == list(rows_b["status"])
    assert np.array_equal(rows_a["shape"], rows_b["shape"]) and np.array_equal(rows_a["tform"], rows_b["tform"])

    # resuming: what is done is skipped in this process; only the failed items go to the workers again
    again, sent_again = _run(
        deca, reconstruct_data_dir, folder, tmp_path / "procs", "processes", monkeypatch, skip_existing=True
    )
    assert again.counts.get("skipped") == 4 and again.counts.get("failed") == 2
    assert {name for _, names in sent_again for name in names} == {"p1b_broken", "p2b_noface"}


def test_images_come_back_when_writing_needs_them(deca, reconstruct_data_dir, tmp_path, monkeypatch):
    one = tmp_path / "one"
    one.mkdir()
    Image.fromarray(skimage.data.astronaut()).resize((256, 256)).save(one / "face.png")
    summary, sent = _run(
        deca, reconstruct_data_dir, one, tmp_path / "out", "processes:1", monkeypatch, save=["vis"], render_orig=True
    )
    assert sent == [(1, ["face"])] and summary.counts == {"ok": 1}
    assert (tmp_path / "out" / "face_vis_original_size.jpg").is_file()


def _runner(deca, data_dir, folder, out, workers, detector_choice=None, cls=None, **extra):
    from decaenv.runtime.pipeline import Reconstructor

    cls = cls or Reconstructor
    return cls(_options(data_dir, folder, out, workers), deca=deca, detector_choice=detector_choice, **extra)


def test_auto_picks_processes_for_long_runs(deca, reconstruct_data_dir, folder, tmp_path, monkeypatch):
    from decaenv.runtime.shard import Shard

    runner = _runner(deca, reconstruct_data_dir, folder, tmp_path / "a", "auto")

    def count(total):
        parts = None if total is None else [(total, False)]
        monkeypatch.setattr("decaenv.runtime.inputs.estimate_parts", lambda inputs, sample_step: parts)

    count(5000)
    assert not runner._uses_processes()  # not under decaenv's command line (pytest's main module)
    monkeypatch.setattr("decaenv.runtime.input_procs.runs_decaenv_cli", lambda: True)
    for device in ("cpu", "cuda"):
        monkeypatch.setattr(runner, "_device_name", device)
        count(999)
        assert not runner._uses_processes()  # the workers' start would not pay
        count(1000)
        assert runner._uses_processes()
        monkeypatch.setattr(runner.options, "shard", Shard(0, 2))
        assert not runner._uses_processes()  # this shard's 500
        monkeypatch.setattr(runner.options, "shard", None)
        count(None)  # a video: frames decoded here; beside a GPU long runs are the rule
        assert runner._uses_processes() == (device == "cuda")
    runner._input_kind = "threads"
    assert not runner._uses_processes()


def test_the_inputs_are_listed_once_for_the_progress_bar_and_the_auto_rule(
    deca, reconstruct_data_dir, folder, tmp_path, monkeypatch
):
    import decaenv.runtime.inputs as inputs

    calls = []
    real = inputs.estimate_parts
    monkeypatch.setattr(inputs, "estimate_parts", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr("decaenv.runtime.input_procs.runs_decaenv_cli", lambda: True)
    runner = _runner(deca, reconstruct_data_dir, folder, tmp_path / "once", "auto")
    assert runner.expected_items() == 6  # the command line's progress bar
    assert not runner._uses_processes() and len(calls) == 1  # the run's rule used that count
    assert not runner._uses_processes() and len(calls) == 2  # (once: a later run lists again)


def test_a_videos_header_tells_how_many_frames_the_run_has(deca, reconstruct_data_dir, tmp_path):
    pytest.importorskip("av")
    from _support.media import make_video

    video = make_video(tmp_path / "clip.mkv", 9)
    runner = _runner(deca, reconstruct_data_dir, video, tmp_path / "v", "auto")
    assert runner.expected_items() == 9  # (the progress bar's total, and `auto`'s count)
    runner.options.sample_step = 4
    assert runner.expected_items() == 3  # frames 0, 4, 8


def test_threads_where_processes_cannot_prepare_the_items(deca, reconstruct_data_dir, folder, tmp_path, caplog):
    from decaenv.runtime.detectors import DetectorChoice
    from decaenv.runtime.extended import ExtendedReconstructor, ExtraOptions

    class Custom:
        name, thread_safe = "custom", True

        def detect(self, image):
            return None

    runner = _runner(
        deca, reconstruct_data_dir, folder, tmp_path / "c", "processes", DetectorChoice(Custom(), "custom", "")
    )
    with caplog.at_level("WARNING", logger="decaenv"):
        assert not runner._uses_processes()
    assert "the custom detector runs only in the main process" in caplog.text
    every_face = _runner(
        deca,
        reconstruct_data_dir,
        folder,
        tmp_path / "f",
        "processes",
        cls=ExtendedReconstructor,
        extras=ExtraOptions(faces="all"),
    )
    assert not every_face._uses_processes()
    plain = _runner(deca, reconstruct_data_dir, folder, tmp_path / "p", "processes", cls=ExtendedReconstructor)
    assert plain._uses_processes() and not plain.keeps_images


def test_the_workers_start_while_the_networks_load(deca, reconstruct_data_dir, folder, tmp_path, monkeypatch):
    from decaenv.runtime import pipeline

    runner = pipeline.Reconstructor(
        _options(reconstruct_data_dir, folder, tmp_path / "early", "processes:2"), lazy=True
    )
    seen = []

    def build(options):  # the networks load once the workers are on their way, for the run to use
        seen.append(runner._processes)
        return deca

    monkeypatch.setattr(pipeline, "build_deca", build)
    try:
        summary = runner.run()
        assert len(seen) == 1 and seen[0] is not None and seen[0].workers == 2
        assert runner._processes is seen[0]  # the run used the pool started early
        assert summary.counts["ok"] == 4 and summary.counts["failed"] == 2
    finally:
        runner.close()


def test_workers_started_early_stop_when_the_networks_fail_to_load(reconstruct_data_dir, folder, tmp_path, monkeypatch):
    from decaenv.runtime import pipeline

    runner = pipeline.Reconstructor(_options(reconstruct_data_dir, folder, tmp_path / "fail", "processes:1"), lazy=True)
    started = []

    def build(options):
        started.append(runner._processes)
        raise DecaenvError("the checkpoint is not there")

    monkeypatch.setattr(pipeline, "build_deca", build)
    with pytest.raises(DecaenvError, match="checkpoint"):
        runner.run()
    assert started[0] is not None and runner._processes is None  # started, then stopped


def test_a_data_dir_without_decas_files_fails_before_any_worker_starts(folder, tmp_path, monkeypatch):
    from decaenv.errors import DataError
    from decaenv.runtime.pipeline import Reconstructor

    empty = tmp_path / "empty-data"
    empty.mkdir()
    runner = Reconstructor(_options(empty, folder, tmp_path / "none", "processes:1"), lazy=True)
    monkeypatch.setattr(ProcessInputPool, "__init__", lambda *a, **k: pytest.fail("a worker was started"))
    with pytest.raises(DataError, match="lacks deca_model.tar"):
        runner.run()


def test_a_worker_that_cannot_start_ends_the_run_with_one_line(tmp_path, folder):
    from decaenv.runtime.inputs import expand_inputs

    broken = tmp_path / "data" / "mtcnn"
    broken.mkdir(parents=True)
    for stem in ("pnet", "rnet", "onet"):
        (broken / f"{stem}.pt").write_bytes(b"not a torch file")  # the worker's detector cannot load
    pool = ProcessInputPool(1, PrepareSpec("mtcnn", str(broken.parent)))
    try:
        with pytest.raises(DecaenvError, match="input worker process stopped") as caught:
            pool.map(list(expand_inputs([folder]))[:2])
    finally:
        pool.close()
    assert "--input-workers threads" in caught.value.one_line()


def test_only_decaenvs_own_main_module_counts_as_the_command_line(monkeypatch):
    import sys

    from decaenv.runtime.input_procs import runs_decaenv_cli

    assert not runs_decaenv_cli()  # pytest
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "/usr/local/bin/decaenv", raising=False)
    assert runs_decaenv_cli()
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "/home/me/my_script.py", raising=False)
    assert not runs_decaenv_cli()


def test_the_cli_flag(reconstruct_data_dir, folder, tmp_path, capsys):
    from decaenv.cli import main

    def run(*args):
        code = main(["--data-dir", str(reconstruct_data_dir), "reconstruct", "--rasterizer", "torch", *map(str, args)])
        return code, capsys.readouterr()

    code, out = run("-i", folder, "-o", tmp_path / "bad", "--input-workers", "forks")
    assert code == 1 and "--input-workers 'forks' is not valid" in out.err and "Traceback" not in out.err
    assert not (tmp_path / "bad").exists()
    code, out = run(
        "-i",
        folder,
        "-o",
        tmp_path / "ok",
        "--detector",
        "mtcnn",
        "--save",
        "codes",
        "--input-workers",
        "processes:2",
        "--json",
    )
    summary = json.loads(out.out)
    assert code == 1 and summary["ok"] == 4 and summary["failed"] == 2  # the broken file and the empty grey one
    assert (tmp_path / "ok" / "p3" / "p3_codes.npz").is_file()


def test_the_workers_are_kept_between_runs_until_closed(deca, reconstruct_data_dir, folder, tmp_path):
    runner = _runner(deca, reconstruct_data_dir, folder, tmp_path / "k", "processes:2")
    try:
        runner.run()
        first = runner._processes
        runner.run()
        assert first is not None and runner._processes is first
    finally:
        runner.close()
    assert runner._processes is None
    from decaenv.runtime.inputs import expand_inputs

    with pytest.raises(RuntimeError, match="shutdown"):  # stopped: it takes no more work
        first.map(list(expand_inputs([folder]))[:1])


def test_ctrl_c_is_the_parents_to_handle(folder):
    """A terminal's Ctrl-C reaches every process of the group: the workers ignore it (no traceback from each),
    the parent stops them."""
    import os
    import signal

    from decaenv.runtime.inputs import expand_inputs

    items = list(expand_inputs([folder]))[:2]
    pool = ProcessInputPool(1, PrepareSpec("", None))
    try:
        assert len(pool.map(items)) == 2
        for pid in list(pool._pool._processes):
            os.kill(pid, signal.SIGINT)
        done = pool.map(items)  # the same workers, still serving
        assert [d.error for d in done] == ["", done[1].error] and done[0].crop is not None
    finally:
        pool.close()


def test_ctrl_c_during_a_run_with_worker_processes(reconstruct_data_dir, folder, tmp_path):
    """The whole process group gets the interrupt (a terminal's Ctrl-C): one line, exit 130, no worker left
    behind, nothing half-written."""
    import os
    import signal
    import subprocess
    import sys
    import time

    many = tmp_path / "many.txt"
    many.write_text("\n".join(str(folder / "p0.png") for _ in range(400)) + "\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "decaenv", "--data-dir", str(reconstruct_data_dir), "reconstruct", "-i", str(many)]
    command += ["-o", str(out), "--save", "codes", "--detector", "mtcnn", "--input-workers", "processes:2"]
    run = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # (pytest's runner may ignore it)
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(out.glob("p0*/*_codes.npz"))) < 8:
            time.sleep(0.2)  # the workers are up and items are being written
        assert run.poll() is None, run.communicate()[1]
        workers = subprocess.run(["pgrep", "-g", str(run.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) >= 3  # the parent, its 2 workers (and multiprocessing's resource tracker)
        os.killpg(run.pid, signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and "KeyboardInterrupt" not in err
    left = "?"
    for _ in range(50):  # (multiprocessing's resource tracker leaves when it reads the end of its pipe)
        left = subprocess.run(["pgrep", "-a", "-g", str(run.pid)], capture_output=True, text=True).stdout
        if not left:
            break
        time.sleep(0.1)
    assert left == ""
    assert not [p for p in out.rglob("*") if ".partial" in p.name]

"""`--engine ray` on a real local Ray cluster: a head and a second node process on this machine, one DECA
worker per node on its node's CPUs; the table's rows equal the single-process run's. Bounded: the nodes have
one and two CPUs, the job is six photos and an 8-frame video (two keyframe segments, decoded by the workers),
and every Ray process is started here (`ray start --block`) and stopped by its own pid."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

pytest.importorskip("ray")
pytest.importorskip("pyarrow")
from decaenv.runtime.table import read_codes

pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.slow,
]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_nodes(address: str, count: int, procs, limit: float = 180.0) -> None:
    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            pytest.fail(
                "a ray node process exited: "
                + " | ".join(p.stdout.read()[-500:] for p in procs if p.poll() is not None)
            )
        done = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True, timeout=120)
        if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2)
    pytest.fail(f"the Ray cluster did not reach {count} nodes within {limit:.0f} s")


@pytest.fixture
def ray_cluster():
    """A head (one CPU) and a second node (two CPUs), stopped by pid at the end."""
    temp = tempfile.mkdtemp(prefix="dr-", dir="/tmp")  # Ray's socket paths must stay short
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # No drain on SIGTERM: Ray >= 2.5x waits up to 30 s for a node to drain (meant for Serve traffic); nothing
    # here is left to drain once the job has finished.
    # Token authentication off, explicitly: a token that a local Ray instance left in ~/.ray (Ray >= 2.5x makes
    # one) otherwise makes the node processes disagree about the mode and exit.
    env = dict(
        os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0", RAY_AUTH_MODE="disabled"
    )
    common = ["--block", "--disable-usage-stats"]
    head = subprocess.Popen(
        [RAY, "start", "--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp]
        + ["--num-cpus", "1", *common],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    procs = [head]
    try:
        time.sleep(3)
        procs.append(
            subprocess.Popen(
                [RAY, "start", "--address", address, "--num-cpus", "2", *common],  # a node of 2 CPUs
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        _wait_for_nodes(address, 2, procs)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    base = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.Resampling.BOX))
    for k in range(5):
        Image.fromarray(np.ascontiguousarray(np.roll(base, 7 * k, axis=1))).save(folder / f"p{k}.png")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(folder / "p5_noface.png")
    return folder


@pytest.fixture
def video(tmp_path):
    from tests._support.media import make_gop_video

    face = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((160, 160), Image.Resampling.BOX))
    return make_gop_video(tmp_path / "clip.mp4", 8, options={"g": "4", "bf": "2"}, picture=face)


def _reconstruct(data_dir, photos, out, *extra):
    cmd = [
        sys.executable,
        "-m",
        "decaenv",
        "--data-dir",
        str(data_dir),
        "reconstruct",
        "-i",
        str(photos),
        "-o",
        str(out),
        "--save",
        "table",
        "--detector",
        "mtcnn",
        "--rasterizer",
        "torch",
        "--batch-size",
        "1",
        "--json",
        *extra,
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=360, env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    )
    assert done.returncode == 1, done.stderr[-2000:]  # the no-face photo fails, in both runs
    return json.loads(done.stdout)


def _temporary_folders() -> set:
    import glob
    import tempfile

    return set(glob.glob(os.path.join(tempfile.gettempdir(), "decaenv-ray-*")))


def test_ray_job_across_two_nodes_equals_single_process(ray_cluster, photos, video, reconstruct_data_dir, tmp_path):
    before = _temporary_folders()
    ray_flags = ("--engine", "ray", "--ray-address", ray_cluster)
    on_ray = _reconstruct(reconstruct_data_dir, photos, tmp_path / "ray", "-i", str(video), *ray_flags)
    assert _temporary_folders() == before  # the workers' predictors leave no folder behind
    assert on_ray["ok"] == 5 + 8 and on_ray["failed"] == 1
    assert on_ray["engine"]["nodes_used"] == 2
    assert on_ray["engine"]["threads_per_node"] == [1, 2]  # each DECA on its node's CPUs (Ray's default: one)
    _reconstruct(reconstruct_data_dir, photos, tmp_path / "local", "-i", str(video))
    ray_rows = read_codes(tmp_path / "ray" / "codes.parquet", status="all")
    local_rows = read_codes(tmp_path / "local" / "codes.parquet", status="all")
    a, b = np.argsort(ray_rows["name"]), np.argsort(local_rows["name"])
    assert sum(name.startswith("clip_frame") for name in ray_rows["name"]) == 8
    for key in ("name", "status", "source", "crop_source", "frame"):
        assert list(ray_rows[key][a]) == list(local_rows[key][b]), key
    ok = local_rows["status"][b] == "ok"
    for key in ("shape", "exp", "pose", "cam", "light", "detail", "tform", "box"):
        got, expected = ray_rows[key][a][ok], local_rows[key][b][ok]
        # relative to the values' scale (the parity metric): the workers run on one thread, the local run on two
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max(), key

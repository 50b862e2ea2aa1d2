"""Benchmark `decaenv fetch` against curl from the same loopback server, and hashing against sha256sum.

    .venv/bin/python bench/fetch.py [--size-mb 1024] [--repeat 3] [--rate-mb 0]

Download: one file served by a local server (sendfile, 127.0.0.1) is fetched alternately by
`curl -o` and by `decaenv fetch` (a full CLI run: start-up, licence record, lock, streaming sha256,
size + hash verification, fsync, atomic rename), into fresh folders on the same disk. Throughput is
bytes / wall time; the ratio decaenv/curl is the figure of merit (target ≥ 0.9). `curl + sha256sum`
(download, then verify) is shown too, since that is what decaenv's single pass replaces.

Verification: `decaenv.fetch.hashes.file_sha256` vs `sha256sum` on the same (page-cached) file, GB/s.
`--rate-mb` paces the server (as a real link would), where both clients should be network-bound.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def serve(folder: str, port_file: str, rate: str = "0") -> None:
    """Child process: serve `folder` on 127.0.0.1 with sendfile (paced to `rate` MB/s when > 0);
    write the port to `port_file`."""
    pace = float(rate) * 1e6

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            path = Path(folder) / self.path.lstrip("/")
            size = path.stat().st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(path, "rb") as fh:
                if not pace:
                    self.connection.sendfile(fh)
                    return
                start, sent, step = time.perf_counter(), 0, 1 << 20
                while sent < size:
                    sent += self.connection.sendfile(fh, sent, min(step, size - sent))
                    ahead = sent / pace - (time.perf_counter() - start)
                    if ahead > 0:
                        time.sleep(ahead)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(httpd.server_address[1]))
    httpd.serve_forever()


def _settle() -> None:
    """Write out every dirty page before a timed command, so that neither client pays for the other's
    writeback (curl leaves its whole file dirty in the page cache; the kernel writes it out later, during
    whatever runs next)."""
    if hasattr(os, "sync"):
        os.sync()


def _timed(argv, env=None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def _decaenv(argv, env):
    """(wall time, seconds decaenv spent on the file itself: lock, transfer, verify, fsync, rename)."""
    import json

    start = time.perf_counter()
    run = subprocess.run(argv, check=True, capture_output=True, env=env, text=True)
    wall = time.perf_counter() - start
    (entry,) = json.loads(run.stdout)["files"]
    assert entry["status"] == "verified", entry
    return wall, entry["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--rate-mb",
        type=float,
        default=0.0,
        help="pace the server to this many MB/s (emulate a real link); 0 = as fast as loopback",
    )
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    if not shutil.which("curl"):
        print("curl is not installed: no baseline to compare with")
        return 2
    work = Path(tempfile.mkdtemp(prefix="decaenv-bench-fetch-", dir=str(ROOT)))
    try:
        return run(work, args.size_mb * 1_000_000, args.repeat, args.rate_mb)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, size: int, repeat: int, rate: float = 0.0) -> int:
    served = work / "served"
    served.mkdir()
    blob = served / "blob.bin"
    digest = hashlib.sha256()
    with open(blob, "wb") as fh:
        chunk = os.urandom(1 << 20)
        for i in range(size // len(chunk) + 1):
            part = chunk[: min(len(chunk), size - i * len(chunk))]
            part = bytes([i % 251]) + part[1:] if part else part
            fh.write(part)
            digest.update(part)
    port_file = work / "port"
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(served), str(port_file), str(rate)])
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}/blob.bin"
        manifest = work / "m.toml"
        manifest.write_text(
            'schema = 1\nname = "bench"\n[licenses.b]\nname = "bench"\nurl = "https://example.org"\n'
            f'[[file]]\nid = "blob"\ndest = "blob.bin"\nlicense = "b"\nsize = {size}\nsha256 = "{digest.hexdigest()}"\n'
            f'[[file.source]]\nkind = "https"\nurl = "{url}"\n'
        )
        env = dict(os.environ, DECAENV_MANIFEST=str(manifest), DECAENV_HOME=str(work / "home"))
        decaenv = [sys.executable, "-m", "decaenv"]
        times = {"curl": [], "curl + sha256sum": [], "decaenv fetch": [], "decaenv fetch (file only)": []}
        for i in range(repeat + 1):  # the first round warms the page cache and is not counted
            target = work / f"round{i}"
            for name in ("curl", "decaenv"):
                (target / name).mkdir(parents=True)
            _settle()
            t_curl = _timed(["curl", "-sS", "--fail", "-o", str(target / "curl" / "blob.bin"), url])
            t_sum = _timed(["sha256sum", str(target / "curl" / "blob.bin")])
            _settle()
            t_dec, t_file = _decaenv(
                decaenv + ["--data-dir", str(target / "decaenv"), "fetch", "--json", "--accept-license", "blob"], env
            )
            if i:
                times["curl"].append(t_curl)
                times["curl + sha256sum"].append(t_curl + t_sum)
                times["decaenv fetch"].append(t_dec)
                times["decaenv fetch (file only)"].append(t_file)
            shutil.rmtree(target)
    finally:
        server.terminate()
        server.wait()
    mb = size / 1e6
    link = f"paced to {rate:g} MB/s" if rate else "unpaced"
    print(
        f"download of {mb:,.0f} MB from 127.0.0.1, {link} ({repeat} interleaved rounds; wall time incl. "
        "process start-up)"
    )
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in medians.items():
        print(
            f"  {name:<26} median {t:6.2f} s  {mb / t:8.1f} MB/s   best {min(times[name]):6.2f} s  "
            f"{mb / min(times[name]):8.1f} MB/s"
        )
    for label, key in (
        ("whole command", "decaenv fetch"),
        ("file only, excl. Python/CLI start-up", "decaenv fetch (file only)"),
    ):
        ratio = medians["curl"] / medians[key]
        best = min(times["curl"]) / min(times[key])
        print(
            f"  decaenv/curl throughput ratio ({label}): median {ratio:.2f}, best {best:.2f} "
            f"(target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'})"
        )
    print(
        f"  decaenv/(curl + sha256sum) ratio (whole command): "
        f"{medians['curl + sha256sum'] / medians['decaenv fetch']:.2f}"
    )
    return verification(blob, size, repeat)


def verification(blob: Path, size: int, repeat: int) -> int:
    sys.path.insert(0, str(ROOT))
    from decaenv.fetch.hashes import file_sha256

    ours, theirs = [], []
    file_sha256(blob)  # page cache
    for _ in range(repeat):
        start = time.perf_counter()
        file_sha256(blob)
        ours.append(time.perf_counter() - start)
        theirs.append(_timed(["sha256sum", str(blob)]))
    gb = size / 1e9
    print(f"verification (sha256 of {gb:.2f} GB, page-cached, median of {repeat})")
    print(f"  decaenv file_sha256  {gb / statistics.median(ours):6.2f} GB/s")
    print(f"  sha256sum            {gb / statistics.median(theirs):6.2f} GB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bounded loaders: reference bombs, deep nesting and zip bombs are refused within 1 s and 100 MB, one line."""

from __future__ import annotations

import pickle
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from _support.faults import run_fetch, write_manifest

from decaenv.errors import DataError


def billion_laughs(levels: int = 30, fanout: int = 10, protocol: int = 2) -> bytes:
    """A FLAME-looking dict whose shapedirs is `levels` nested lists each holding `fanout` references to the
    previous one: a few hundred bytes, 10^30 nodes when walked as a tree."""
    inner: list = [0.0]
    for _ in range(levels):
        inner = [inner] * fanout
    return pickle.dumps({"v_template": inner, "shapedirs": inner, "f": inner}, protocol=protocol)


def deep_nesting(depth: int = 200_000) -> bytes:
    """A pickle of `depth` nested one-item lists, written by hand (pickle.dumps itself would recurse)."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


def _npy_with_pickle(payload: bytes) -> bytes:
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def _bounded(code: str) -> dict:
    """Run `code` in a fresh interpreter; returns its wall time and peak memory growth (KB)."""
    wrapper = ("import resource, time, json, sys\n"
               "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
               "start = time.perf_counter()\n"
               "try:\n" + "".join(f"    {line}\n" for line in code.splitlines()) +
               "    out = 'accepted'\n"
               "except Exception as exc:\n"
               "    out = type(exc).__name__ + ': ' + str(exc)\n"
               "print(json.dumps({'seconds': time.perf_counter() - start, 'out': out,\n"
               "                  'kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base}))\n")
    run = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=60,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)))
    import json

    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("loader", ["flame", "outline"])
def test_billion_laughs_pickle_is_refused_fast_and_small(tmp_path, loader):
    bomb = tmp_path / "generic_model.pkl"
    bomb.write_bytes(billion_laughs())
    assert len(bomb.read_bytes()) < 1000
    code = (f"from decaenv.loaders.flame import load_flame\nload_flame({str(bomb)!r})" if loader == "flame" else
            f"from decaenv.fetch.structure import load_outline\nload_outline(open({str(bomb)!r}, 'rb'), 'x')")
    result = _bounded(code)
    assert result["out"].startswith("PickleLimitError") and "expands to more than" in result["out"]
    assert result["seconds"] < 1.0 and result["kb"] < 100_000, result


def test_object_npy_bomb_is_refused_by_verify_and_by_the_runtime_loader(tmp_path):
    bomb = tmp_path / "texture_data_256.npy"
    bomb.write_bytes(_npy_with_pickle(billion_laughs(levels=25)))
    for code in (f"from decaenv.fetch.structure import outline_npy\noutline_npy({str(bomb)!r})",
                 f"from decaenv.loaders.safe_pickle import load_object_npy\nload_object_npy({str(bomb)!r})"):
        result = _bounded(code)
        assert result["out"].startswith("PickleLimitError"), result
        assert result["seconds"] < 1.0 and result["kb"] < 100_000, result


def test_deep_nesting_is_a_one_line_refusal_not_a_recursion_error(tmp_path):
    deep = tmp_path / "generic_model.pkl"
    deep.write_bytes(deep_nesting())
    from decaenv.loaders.flame import load_flame

    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        load_flame(deep)
    assert time.perf_counter() - start < 1.0
    assert "refused" in info.value.one_line() and "\n" not in info.value.one_line()


def test_convert_flame_cli_refuses_the_bomb_with_exit_1(tmp_path, capsys):
    from decaenv.cli import main

    bomb = tmp_path / "generic_model.pkl"
    bomb.write_bytes(billion_laughs())
    start = time.perf_counter()
    code = main(["convert", "flame", str(bomb), "-o", str(tmp_path / "out.npz")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "refused" in err, err
    assert time.perf_counter() - start < 5 and not (tmp_path / "out.npz").exists()


def test_fetch_from_refuses_the_bomb(tmp_path):
    bomb = tmp_path / "in" / "generic_model.pkl"
    bomb.parent.mkdir()
    bomb.write_bytes(billion_laughs())
    manifest = write_manifest(tmp_path / "m.toml", [
        {"id": "flame", "dest": "generic_model.pkl", "validate": {"kind": "flame-model"},
         "sources": [{"kind": "https", "url": "https://example.org/none"}]}])
    (result,) = run_fetch(manifest, tmp_path / "data", importing=[bomb])
    assert result.error is not None and "expands to more than" in result.error.message
    assert not (tmp_path / "data" / "generic_model.pkl").exists()


def _zip_bomb(path: Path, member: str, size: int) -> None:
    """A deflated member of `size` zero bytes (a few hundred kB on disk)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open(member, "w", force_zip64=True) as out:
            block = bytes(1 << 20)
            for _ in range(size >> 20):
                out.write(block)


@pytest.mark.slow  # writes or builds hundreds of MB: in `make test`, not `make test-fast`
def test_zip_bomb_is_refused_before_extraction_and_not_kept(tmp_path):
    archive = tmp_path / "FLAME2020.zip"
    _zip_bomb(archive, "FLAME2020/generic_model.pkl", 128 << 20)
    assert archive.stat().st_size < 2 << 20
    manifest = write_manifest(tmp_path / "m.toml", [
        {"id": "flame", "dest": "generic_model.pkl", "approx_size": 53000000, "validate": {"kind": "flame-model"},
         "sources": [{"kind": "https", "url": "https://example.org/none", "archive": "FLAME2020.zip",
                      "member": "FLAME2020/generic_model.pkl"}]}])
    data = tmp_path / "data"
    start = time.perf_counter()
    (result,) = run_fetch(manifest, data, importing=[archive])
    assert time.perf_counter() - start < 1.0
    assert result.error is not None and result.error.code == "archive-too-large"
    assert "refused" in result.error.message and "nothing was extracted" in result.error.hint
    leftovers = [p for p in data.rglob("*") if p.is_file() and p.stat().st_size > 1 << 20]
    assert leftovers == []


@pytest.mark.slow  # writes or builds hundreds of MB: in `make test`, not `make test-fast`
def test_npz_member_bomb_is_refused_by_the_crc_pass(tmp_path):
    bomb = tmp_path / "x.npz"
    _zip_bomb(bomb, "a.npy", 80 << 20)
    from decaenv.fetch.zipcheck import verify_zip_crc

    start = time.perf_counter()
    with pytest.raises(DataError, match="zip bomb"):
        verify_zip_crc(bomb)
    assert time.perf_counter() - start < 1.0


def test_real_files_pass_the_limits(procedural_data_dir):
    """The limits are derived from the real files: DECA's and FLAME's files must load as before."""
    from decaenv.fetch.structure import outline_npy, outline_torch
    from decaenv.loaders.flame import load_flame
    from decaenv.loaders.safe_pickle import load_object_npy

    assert load_flame(procedural_data_dir / "generic_model.pkl").v_template.shape == (5023, 3)
    assert isinstance(load_object_npy(procedural_data_dir / "landmark_embedding.npy"), dict)
    assert isinstance(outline_npy(procedural_data_dir / "texture_data_256.npy"), dict)
    assert "E_flame" in outline_torch(procedural_data_dir / "deca_model.tar")


def test_deca_public_files_pass_the_limits(shared_assets):
    from decaenv.fetch.structure import outline_npy
    from decaenv.loaders.safe_pickle import load_object_npy

    embedding = shared_assets / "deca-data" / "landmark_embedding.npy"
    assert isinstance(load_object_npy(embedding), dict) and isinstance(outline_npy(embedding), dict)

"""DECA's text formats, byte for byte, and the all-or-nothing output set."""

import numpy as np
import pytest

from decaenv.errors import DecaenvError
from decaenv.runtime import writers


def test_coarse_obj_is_formatted_like_decas_write_obj():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(7, 3)).astype(np.float32)
    vt = rng.random((9, 2)).astype(np.float32)
    f = rng.integers(0, 7, (4, 3))
    ft = rng.integers(0, 9, (4, 3))
    # DECA: 'v {} {} {}'.format(...) of float32 numpy values, vt likewise, 'f {}/{} ...' 1-based
    expected = (
        ["mtllib head.mtl", ""]
        + ["v {} {} {}".format(*row) for row in v]
        + ["vt {} {}".format(*row) for row in vt]
        + ["usemtl FaceTexture"]
        + [
            "f {}/{} {}/{} {}/{}".format(a + 1, ta + 1, b + 1, tb + 1, c + 1, tc + 1)
            for (a, b, c), (ta, tb, tc) in zip(f, ft)
        ]
    )
    assert writers.coarse_obj_text("head", v, f, vt, ft) == "\n".join(expected) + "\n"


def test_detail_obj_is_formatted_like_decas_write_obj():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(5, 3))
    rgb = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    f = rng.integers(0, 5, (3, 3))
    expected = ["v {} {} {} {} {} {}".format(*v[i], *rgb[i]) for i in range(5)] + [
        "f {} {} {}".format(*(row + 1)) for row in f
    ]
    assert writers.detail_obj_text(v, rgb, f) == "\n".join(expected) + "\n"


def test_kpt_text_is_numpy_savetxt():
    values = np.array([[0.5, -0.25], [1e-9, 3.0]])
    assert (
        writers.kpt_text(values) == "5.000000000000000000e-01 -2.500000000000000000e-01\n"
        "1.000000000000000062e-09 3.000000000000000000e+00\n"
    )


def test_output_set_is_all_or_nothing(tmp_path):
    outputs = writers.OutputSet(tmp_path, "item")

    def broken(path):
        path.write_text("half")
        raise OSError(28, "No space left on device")

    files = {"item.obj": (True, writers.text_writer("v 0 0 0\n")), "item_vis.jpg": (False, broken)}
    with pytest.raises(DecaenvError, match="No space left on device"):
        writers.write_item(outputs, files)
    assert list(tmp_path.iterdir()) == []
    done = writers.write_item(writers.OutputSet(tmp_path, "item"), {"item.obj": (True, writers.text_writer("v\n"))})
    assert [p.name for p in done] == ["item.obj"] and (tmp_path / "item" / "item.obj").read_text() == "v\n"

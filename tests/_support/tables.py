"""Rows for table tests."""

import numpy as np


def table_row(name, value):
    """An ok row whose codes are all `value`."""
    from decaenv.runtime.table import make_row

    codes = {
        k: np.full(n, value, np.float32)
        for k, n in (("shape", 100), ("tex", 50), ("exp", 50), ("pose", 6), ("cam", 3), ("light", 27), ("detail", 128))
    }
    return make_row(
        name,
        f"/in/{name}.png",
        None,
        "ok",
        crop_source="test",
        box=(1, 2, 3, 4),
        tform=np.eye(3),
        original_size=(10, 20),
        codes=codes,
    )

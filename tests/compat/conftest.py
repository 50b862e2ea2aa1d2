"""Fixtures of the compat tests: a fake face_alignment (the real one needs weights and numba), the synthetic
FLAME pickle, and throw-away virtual environments (built once, cached by their requirements)."""

from __future__ import annotations

import enum
import sys
import types

import numpy as np
import pytest


class _LandmarksType(enum.IntEnum):
    TWO_D = 1
    TWO_HALF_D = 2
    THREE_D = 3


def make_fake_face_alignment(version: str = "1.5.0") -> types.ModuleType:
    """A module shaped like face-alignment >= 1.5 (`LandmarksType` IntEnum, `FaceAlignment.__init__`)."""
    mod = types.ModuleType("face_alignment")
    mod.__version__ = version
    landmarks_type = enum.IntEnum("LandmarksType", [(m.name, m.value) for m in _LandmarksType])
    landmarks_type.__module__ = "face_alignment.api"

    class FaceAlignment:
        def __init__(self, landmarks_type, network_size=4, device="cuda", dtype=None, flip_input=False,
                     face_detector="sfd", face_detector_kwargs=None, verbose=False, compile=True,
                     max_batch_size=1):
            self.landmarks_type, self.device, self.compile = landmarks_type, device, compile

    mod.LandmarksType = landmarks_type
    mod.FaceAlignment = FaceAlignment
    return mod


@pytest.fixture
def fake_face_alignment(monkeypatch):
    """A fake `face_alignment` module in sys.modules for the duration of the test."""
    mod = make_fake_face_alignment()
    monkeypatch.setitem(sys.modules, "face_alignment", mod)
    return mod


@pytest.fixture(scope="session")
def flame_pickle(tmp_path_factory):
    """(path, arrays): a synthetic chumpy-style FLAME pickle and the exact arrays written into it."""
    pytest.importorskip("scipy")
    from decaenv.synthetic import flame, topology

    arrays = flame.flame_arrays(topology.procedural_head(), np.random.default_rng(11))
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    path.write_bytes(flame.flame_pickle_bytes(arrays))
    return path, arrays


@pytest.fixture(autouse=True)
def _no_shim_left_active():
    """Every test starts and ends with no shim applied (a leak would make later tests lie)."""
    from decaenv import patches

    assert patches.active_ids() == ()
    yield
    leaked = patches.active_ids()
    patches.undo_all()
    assert leaked == (), f"shims left active: {leaked}"

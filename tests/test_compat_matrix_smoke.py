"""Two cells of the compatibility matrix (scripts/compat_matrix.py), offline from the wheelhouse `make` fills.

The full matrix (40 cells, ~30 min) writes docs/compatibility.md; this smoke version proves the machinery and the
doctor's explanations in real venvs: numpy 2 + face_alignment 1.5.0 without chumpy, and numpy 1.26 +
face_alignment 1.3.5 + chumpy 0.70 built from its sdist.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEELHOUSE = Path(os.environ.get("DECAENV_SMOKE_WHEELHOUSE", REPO / ".venv" / "wheelhouse"))

pytestmark = pytest.mark.slow


def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, synthetic_data_dir):
    if not (WHEELHOUSE / ".complete").is_file():
        pytest.skip(
            f"no smoke wheelhouse at {WHEELHOUSE}: run `make test` (it fills it) or "
            "`python scripts/compat_matrix.py --download-wheels DIR`"
        )
    out_dir = tmp_path_factory.mktemp("matrix")
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "compat_matrix.py"),
        "--smoke",
        "--wheelhouse",
        str(WHEELHOUSE),
        "--json",
        str(out_dir / "cells.json"),
        "--out",
        str(out_dir / "compatibility.md"),
        "--data-dir",  # the session's synthetic data dir (what `selftest --make-assets --small` would write)
        str(synthetic_data_dir),
    ]
    before = _listing(synthetic_data_dir)
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout + run.stderr
    assert _listing(synthetic_data_dir) == before  # the doctors only read the shared data dir
    return json.loads((out_dir / "cells.json").read_text()), (out_dir / "compatibility.md").read_text()


def test_both_cells_install_and_the_doctor_reports(smoke):
    cells, _ = smoke
    assert [c["cell"] for c in cells] == ["py3.11-np2-fa1.5.0-chumpynone", "py3.11-np1.26-fa1.3.5-chumpy0.70"]
    for cell in cells:
        assert cell["installed"], cell["install_error"]
        assert cell["doctor_exit"] in (0, 1) and cell["verdict"]
        assert cell["checks"]["flame-loader"] == "ok"  # decaenv reads FLAME without chumpy in both
    np2, np126 = cells
    assert np2["versions"]["numpy"].startswith("2.") and np126["versions"]["numpy"] == "1.26.4"
    assert np2["versions"]["chumpy"] == "-" and np126["versions"]["chumpy"] == "0.70"
    assert np2["checks"]["chumpy"] == "ok" and np126["checks"]["chumpy"] == "warn"  # installed but broken
    assert np126["versions"]["face-alignment"] == "1.3.5"


def test_no_torch_cells_are_explained(smoke):
    cells, table = smoke
    for cell in cells:  # smoke cells have no torch: the doctor must say so, not crash
        assert any(p.startswith("torch: ") for p in cell["problems"])
        assert "timeout" not in cell["checks"].values() and "crash" not in cell["checks"].values()
    assert table.count("| 3.11 |") == 2 and "doctor verdict" in table

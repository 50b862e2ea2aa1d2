"""Issue 11 §4: the doctor checks the user's DECA checkout — each known breakage that will hit its code in this
environment is a warn row naming file:line and the fix, and the verdict says whether DECA's own demo will run
here under `decaenv exec`. On copies of DECA's checkout (`$DECAENV_TEST_ASSETS/deca-src`, never in the repo)
and on small fake checkouts; outside a checkout the rows are not shown."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from decaenv.doctor.checks import checkout
from decaenv.doctor.model import Report, Status
from decaenv.doctor.registry import REGISTRY
from decaenv.doctor.runner import Runner
from decaenv.doctor.testing import FakeProbe, make_context
from decaenv.doctor.verdict import compute_verdict

ALL_SHIMS = ["inspect-getargspec", "numpy-aliases", "chumpy-stand-in", "face-alignment-api", "face-alignment-cpu",
             "torch-load", "standard-rasterizer", "pytorch3d-stand-in"]


def seed_env(shims=ALL_SHIMS, **over):
    """The seed's machine: CPU-only torch 2.13, numpy 2, face_alignment 1.5.0, no chumpy, no pytorch3d."""
    sections = {
        "face-alignment": {"installed": True, "version": "1.5.0", "import": {"importable": True},
                           "landmarks_members": ["TWO_D", "TWO_HALF_D", "THREE_D"],
                           "defaults": {"device": "'cuda'", "compile": "True"}},
        "torch": {"installed": True, "importable": True, "version": "2.13.0+cpu", "cuda": None},
        "cuda": {"available": False},
        "numpy": {"importable": True, "version": "2.4.6", "aliases_missing": ["bool", "int", "float", "object"]},
        "chumpy": {"installed": False},
        "pytorch3d": {"installed": False},
        "compat": {"patches": [{"id": s} for s in shims]},
        "deca-imports": {"modules": ["cv2", "kornia", "torch", "torchvision", "yacs"], "missing": []},
    }
    sections.update(over)
    return sections


@pytest.fixture()
def deca_copy(tmp_path, shared_assets):
    src = shared_assets / "deca-src"
    if not src.is_dir():
        pytest.skip("DECA's checkout is not in the shared assets")
    dst = tmp_path / "DECA"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("TestSamples", "*.jpg", "*.png", "*.gif"))
    return dst


def run_rows(deca_dir, sections):
    ctx = make_context(FakeProbe(sections=sections), deca_dir=Path(deca_dir))
    names = [c.id for c in REGISTRY.all() if c.category == "checkout"]
    report = Runner(REGISTRY, ctx).run(names)
    return report, compute_verdict(report)


def test_seed_breakages_are_warn_rows_with_file_line_and_fix(deca_copy):
    report, verdict = run_rows(deca_copy, seed_env())
    rows = report.results
    fa = rows["deca-fa-enum"]
    assert fa.status is Status.WARN and "decalib/datasets/detectors.py:22" in fa.summary and "_2D" in fa.summary
    assert any(c.startswith("decaenv exec -- python demos/demo_reconstruct.py") and c.endswith("--device cpu")
               for c in fa.remediation.commands)
    assert f"decaenv patch {deca_copy}" in fa.remediation.commands
    expected = {"deca-fan-device": "decalib/datasets/detectors.py:22", "deca-chumpy": "decalib/models/FLAME.py:",
                "deca-numpy-aliases": "decalib/utils/util.py:676", "deca-torch-load": "decalib/deca.py:89",
                "deca-rasterizer": "decalib/utils/renderer.py:", "deca-pytorch3d": "decalib/utils/renderer.py:27"}
    for cid, place in expected.items():
        assert rows[cid].status is Status.WARN and place in rows[cid].summary, (cid, rows[cid].summary)
        assert "decaenv exec" in rows[cid].remediation.text, cid
    assert "gcc-7" in " ".join(rows["deca-rasterizer"].details)
    assert rows["deca-imports"].status is Status.OK
    demo = rows["deca-demo"]
    assert demo.status is Status.OK and demo.data["runs_under_exec"] and len(demo.data["handled_by_exec"]) == 7
    assert verdict.deca["runs_under_exec"]
    assert verdict.line.endswith("; DECA's demos/demo_reconstruct.py runs here under `decaenv exec`")


def test_missing_shim_or_module_blocks_the_demo(deca_copy):
    shims = [s for s in ALL_SHIMS if s != "standard-rasterizer"]
    imports = {"modules": ["kornia", "torch"], "missing": ["kornia"]}
    report, verdict = run_rows(deca_copy, seed_env(shims, **{"deca-imports": imports}))
    assert "no `standard-rasterizer` shim" in report.results["deca-rasterizer"].remediation.text
    assert report.results["deca-imports"].status is Status.WARN
    assert "pip install kornia" in report.results["deca-imports"].remediation.commands[0]
    assert report.results["deca-demo"].data["blockers"] == ["deca-rasterizer", "deca-imports"]
    assert not verdict.deca["runs_under_exec"]
    assert verdict.line.endswith("will not run here, even under `decaenv exec` (deca-rasterizer, deca-imports)")


def test_a_fitting_environment_is_ok_row_by_row(deca_copy):
    fine = seed_env(**{
        "face-alignment": {"installed": True, "version": "1.3.4", "landmarks_members": ["_2D", "_2halfD", "_3D"],
                           "defaults": {"device": "'cuda'"}},
        "torch": {"installed": True, "importable": True, "version": "1.13.1+cu117", "cuda": "11.7"},
        "cuda": {"available": True},
        "numpy": {"importable": True, "version": "1.23.5", "aliases_missing": []},
        "chumpy": {"installed": True, "importable": True},
        "pytorch3d": {"installed": True, "import": {"importable": True}}})
    report, _ = run_rows(deca_copy, fine)
    for cid in ("deca-fa-enum", "deca-fan-device", "deca-chumpy", "deca-numpy-aliases", "deca-torch-load",
                "deca-pytorch3d"):
        assert report.results[cid].status is Status.OK, (cid, report.results[cid].summary)
    rast = report.results["deca-rasterizer"]  # with CUDA the build is attempted, and its flags fail
    assert rast.status is Status.WARN and "-std=c++14" in rast.summary and f"decaenv patch {deca_copy}" in \
        rast.remediation.commands


def test_chumpy_causes_map_to_their_shims(deca_copy):
    broken = {"installed": True, "importable": False, "cause": "getargspec",
              "error": "AttributeError: module 'inspect' has no attribute 'getargspec'"}
    row = run_rows(deca_copy, seed_env(chumpy=broken))[0].results["deca-chumpy"]
    assert row.status is Status.WARN and row.data["shims"] == ["inspect-getargspec", "numpy-aliases"]
    assert "inspect.getargspec" in row.summary


def test_after_decaenv_patch_the_rewritten_breakages_are_ok(deca_copy):
    from decaenv.patches.rewrite import patch_checkout

    patch_checkout(deca_copy)
    rows = run_rows(deca_copy, seed_env())[0].results
    assert rows["deca-fa-enum"].status is Status.OK and rows["deca-numpy-aliases"].status is Status.OK
    assert rows["deca-fan-device"].status is Status.WARN  # no rewrite for it: exec only


def _fake_checkout(root: Path, **files) -> Path:
    (root / "decalib" / "datasets").mkdir(parents=True)
    (root / "demos").mkdir()
    (root / "decalib" / "deca.py").write_text("import numpy as np\n")
    for rel, text in files.items():
        path = root / rel.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_small_fake_checkout_names_its_own_lines(tmp_path):
    root = _fake_checkout(tmp_path / "fork", **{
        "decalib__datasets__detectors.py": "import face_alignment\n\n# LandmarksType._2D in a comment\n"
                                           "m = face_alignment.FaceAlignment(face_alignment.LandmarksType._2D)\n",
        "demos__demo_reconstruct.py": "import numpy as np\nx = np.float(1)  # np.int in a comment\n"})
    rows = run_rows(root, seed_env())[0].results
    assert rows["deca-fa-enum"].data["hits"] == ["decalib/datasets/detectors.py:4"]
    assert rows["deca-numpy-aliases"].data["hits"] == ["demos/demo_reconstruct.py:2"]
    assert rows["deca-rasterizer"].status is Status.OK and rows["deca-chumpy"].status is Status.OK


def test_demo_imports_follow_the_checkout_modules(tmp_path):
    from decaenv.doctor.deca_source import demo_imports

    root = _fake_checkout(tmp_path / "d", **{
        "decalib__utils__util.py": "import kornia\nimport os\ndef f():\n    import facenet_pytorch\n",
        "decalib__utils____init__.py": "",
        "demos__demo_reconstruct.py": "import sys\nfrom decalib.utils import util\ntry:\n    import yacs\n"
                                      "except ImportError:\n    pass\n"})
    assert demo_imports(root) == ["kornia", "yacs"]  # module level only: facenet_pytorch is lazy


def test_outside_a_checkout_the_rows_are_not_run(tmp_path, monkeypatch):
    from decaenv.doctor.api import DoctorOptions, checkout_of, select_names
    from decaenv.errors import UsageError

    monkeypatch.chdir(tmp_path)
    assert checkout_of(DoctorOptions()) is None
    assert not [n for n in select_names(DoctorOptions()) if REGISTRY.get(n).category == "checkout"]
    assert select_names(DoctorOptions(), checkout=True) == []  # everything, the checkout rows included
    assert len(select_names(DoctorOptions())) == len(REGISTRY) - len(checkout.ROWS) - 1
    root = _fake_checkout(tmp_path / "DECA")
    monkeypatch.chdir(root / "decalib")
    assert checkout_of(DoctorOptions()) == root.resolve()
    with pytest.raises(UsageError, match="is not a DECA checkout"):
        checkout_of(DoctorOptions(deca_dir=tmp_path))
    assert compute_verdict(Report(checks=[], results={})).deca is None


def _doctor(*args, cwd):
    return subprocess.run([sys.executable, "-m", "decaenv", "doctor", "--no-build", "--no-cache", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=dict(os.environ, DECAENV_DATA_DIR=str(cwd)))


def test_cli_deca_dir_json_and_a_bad_dir(deca_copy, tmp_path):
    run = _doctor("--deca-dir", str(deca_copy), "checkout", "--json", cwd=tmp_path)
    doc = json.loads(run.stdout)
    ids = {c["id"]: c for c in doc["checks"]}
    assert ids["deca-fa-enum"]["status"] == "warn" and "detectors.py:22" in ids["deca-fa-enum"]["summary"]
    assert doc["verdict"]["deca"]["checkout"] == str(deca_copy.resolve())
    assert "DECA's demos/demo_reconstruct.py" in doc["verdict"]["line"]
    bad = _doctor("--deca-dir", str(tmp_path), cwd=tmp_path)
    assert bad.returncode == 1 and "is not a DECA checkout" in bad.stderr and "Traceback" not in bad.stderr
    outside = _doctor("python", "--json", cwd=tmp_path)
    doc = json.loads(outside.stdout)
    assert doc["verdict"]["deca"] is None and not [c for c in doc["checks"] if c["id"].startswith("deca-")]

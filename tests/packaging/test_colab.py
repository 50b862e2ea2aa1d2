"""docs/colab.ipynb, executed offline: its code cells run in order (plain `exec`, one namespace, no Jupyter
kernel) against synthetic model files, with `DECAENV_OFFLINE=1` so any download would fail. The install cell is
the only one with IPython syntax; it is checked, not run (the package under test is already installed).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "docs" / "colab.ipynb"


def _cells():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["language"] == "python"
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


def test_notebook_shape():
    cells = _cells()
    (install,) = [c for c in cells if "install" in _tags(c)]
    source = "".join(install["source"])
    spec = re.search(r'%pip install --quiet "([^"]+)"', source).group(1)
    from packaging.requirements import Requirement

    req = Requirement(spec)
    import decaenv

    assert req.name == "decaenv" and req.extras == {"runtime", "fetch"}
    # the wheel `python -m build` writes, uploaded to Colab's /content: kept in step with the version, no URL to fill in
    assert req.url == f"file:///content/decaenv-{decaenv.__version__}-py3-none-any.whl"
    assert f"dist/decaenv-{decaenv.__version__}-py3-none-any.whl" in source and "OWNER" not in source
    assert sum("parameters" in _tags(c) for c in cells) == 1
    for cell in cells:
        assert not cell["outputs"] and cell["execution_count"] is None  # committed clean
        if "install" not in _tags(cell):
            text = "".join(cell["source"])
            assert not re.search(r"^\s*[%!]", text, re.M), "IPython syntax outside the install cell"
            compile(text, "cell", "exec")
    assert "getpass" in "".join("".join(c["source"]) for c in cells)  # the password is never in the notebook


@pytest.mark.slow
def test_notebook_runs_offline_on_synthetic_files(tmp_path, monkeypatch, synthetic_data_dir, mtcnn_data_dir):
    assets = os.environ.get("DECAENV_TEST_ASSETS")
    public = Path(assets) / "deca-data" if assets else None
    if public is None or not (public / "head_template.obj").is_file():
        pytest.skip("needs DECA's public files ($DECAENV_TEST_ASSETS/deca-data): the notebook fetches them")
    import skimage.data
    from PIL import Image

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DECAENV_OFFLINE", "1")  # a download anywhere would fail the run
    data = tmp_path / "deca-data"
    data.mkdir()
    # The checkpoint and FLAME are already in place (as after a browser download into the folder): `fetch`
    # adopts them without copying, which keeps this test's writes small (the suite has a write budget); the
    # notebook imports the rest (`fetch --from`).
    for name in ("deca_model.tar", "generic_model.pkl"):
        (data / name).symlink_to(synthetic_data_dir / name)
    overrides = {  # what a user sets in the parameters cell
        "IMPORT_FROM": [str(synthetic_data_dir / "texture_data_256.npy"), str(public), str(mtcnn_data_dir / "mtcnn")],
        "DATA_DIR": str(data),
        "PHOTO": str(photo),
        "OUT_DIR": str(tmp_path / "results"),
        "DEVICE": "cpu",
    }
    namespace = {"__name__": "__main__"}
    for cell in _cells():
        if "install" in _tags(cell):
            continue
        exec(compile("".join(cell["source"]), f"{NOTEBOOK.name} cell {cell.get('id')}", "exec"), namespace)
        if "parameters" in _tags(cell):
            namespace.update(overrides)
    results = tmp_path / "results"
    assert (results / "astronaut_vis.jpg").is_file() and namespace["VIS"] == str(results / "astronaut_vis.jpg")
    assert (results / "astronaut" / "astronaut.obj").is_file()
    assert (results / "astronaut_codes.npz").is_file() or (results / "astronaut" / "astronaut_codes.npz").is_file()
    assert (tmp_path / "deca-data" / "mtcnn" / "onet.pt").is_file()

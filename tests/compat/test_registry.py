"""The registry and `decaenv patches list`: the right state for faked versions, and the doctor's view."""

import json
import re

import pytest

from decaenv import patches
from decaenv.cli import main
from decaenv.patches import Environment, registry


@pytest.mark.parametrize(
    "patch_id, assume, expected",
    [
        ("inspect-getargspec", {"python": "3.10.13"}, "not needed"),
        ("inspect-getargspec", {"python": "3.11.0"}, "needed"),
        ("inspect-getargspec", {"python": "3.13.0"}, "needed"),
        ("numpy-aliases", {"numpy": "1.23.5"}, "not needed"),
        ("numpy-aliases", {"numpy": "1.24.0"}, "needed"),
        ("numpy-aliases", {"numpy": "2.4.6"}, "needed"),
        ("numpy-aliases", {"numpy": None}, "not needed"),
        ("chumpy-stand-in", {"chumpy": None}, "needed"),
        ("chumpy-stand-in", {"chumpy": "0.70"}, "not needed"),
        ("face-alignment-api", {"face-alignment": "1.3.4"}, "not needed"),
        ("face-alignment-api", {"face-alignment": "1.3.5"}, "needed"),
        ("face-alignment-api", {"face-alignment": "1.5.0"}, "needed"),
        ("face-alignment-api", {"face-alignment": None}, "not needed"),
        ("face-alignment-cpu", {"face-alignment": "1.2.0"}, "needed"),
        ("face-alignment-cpu", {"face-alignment": None}, "not needed"),
        ("torch-load", {"torch": "1.13.1"}, "needed"),
        ("torch-load", {"torch": None}, "not needed"),
        ("torch-cross-dim", {"torch": "2.1.2"}, "not needed"),
        ("torch-cross-dim", {"torch": "2.2.0"}, "needed"),
        ("torch-cross-dim", {"torch": "2.13.0+cpu"}, "needed"),
        ("torch-cross-dim", {"torch": "2.6.0.dev20241112"}, "needed"),
        ("skimage-multichannel", {"scikit-image": "0.19.3"}, "not needed"),
        ("skimage-multichannel", {"scikit-image": "0.20.0"}, "needed"),
        ("skimage-multichannel", {"scikit-image": "0.26.0"}, "needed"),
    ],
)
def test_state_for_faked_versions(patch_id, assume, expected):
    status = registry.status(registry.get(patch_id), Environment(assume))
    assert status.state == expected, status.detail
    name = next(iter(assume))
    assert status.version == assume[name] or (assume[name] and status.version in assume[name])
    assert name in status.detail


def test_active_state_and_versions_parsed_once(monkeypatch):
    env = Environment({"numpy": "2.0.0"})
    with patches.active("numpy-aliases"):
        assert registry.status(registry.get("numpy-aliases"), env).state == "active"
    assert registry.status(registry.get("numpy-aliases"), env).state == "needed"
    calls = []
    from decaenv.patches import _model

    monkeypatch.setattr(_model, "_distribution_version", lambda dist, imported=False: calls.append(dist) or "1.0")
    env = Environment()
    registry.status_all(env)
    assert sorted(calls) == sorted(set(calls)), "a version was looked up twice"


def test_registry_rows_are_complete():
    ids = registry.ids()
    assert len(ids) == len(set(ids)) >= 8
    for patch in registry.PATCHES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", patch.id), patch.id
        assert patch.link.startswith("https://") and patch.reason and patch.title
        module = __import__(patch.apply.__module__, fromlist=["_"])
        assert "Upstream: https://" in module.__doc__, f"{module.__name__} lacks its upstream link"


def test_importing_patches_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys, decaenv.patches, decaenv.patches.registry, decaenv.patches.launcher; "
        "decaenv.patches.registry.status_all(); "  # the doctor's call must not import the targets either
        "print(sorted(m for m in ('numpy', 'torch', 'skimage', 'face_alignment', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_list_with_faked_versions(capsys):
    code = main(
        [
            "patches",
            "list",
            "--assume",
            "numpy=1.23.5",
            "--assume",
            "python=3.10.0",
            "--assume",
            "face-alignment=1.5.0",
            "--assume",
            "torch=none",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = {line.split("]", 1)[1].split()[0]: line for line in out.splitlines()[1:]}
    assert lines["numpy-aliases"].startswith("[not needed]") and "numpy 1.23.5" in lines["numpy-aliases"]
    assert lines["inspect-getargspec"].startswith("[not needed]")
    assert lines["face-alignment-api"].startswith("[needed]")
    assert lines["torch-load"].startswith("[not needed]") and "torch is not installed" in lines["torch-load"]


def test_cli_list_json_and_verbose(capsys):
    assert main(["patches", "list", "--json", "--assume", "scikit-image=0.19.0"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["id"]: r for r in data["shims"]}
    assert set(rows) == set(registry.ids())
    assert rows["skimage-multichannel"]["state"] == "not needed"
    assert set(rows["numpy-aliases"]) == {"id", "title", "reason", "link", "package", "version", "state", "detail"}
    assert main(["-v", "patches", "list"]) == 0
    assert "see: https://github.com/mattloper/chumpy/issues/51" in capsys.readouterr().out


def test_cli_list_bad_assume_is_one_line(capsys):
    assert main(["patches", "list", "--assume", "numpy"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DIST=VERSION" in err[0]


def test_cli_list_for_another_interpreter(capsys):
    import sys

    assert main(["patches", "list", "--json", "--python", sys.executable, "--assume", "numpy=1.0"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["id"]: r for r in data["shims"]}
    assert rows["numpy-aliases"]["state"] == "not needed" and rows["numpy-aliases"]["version"] == "1.0"
    assert main(["patches", "list", "--python", "/no/such/python"]) == 127

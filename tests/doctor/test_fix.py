"""`--fix`: planning, the safety fence around deletions, dry runs, --yes, conversions, failures."""

import os
from pathlib import Path

import pytest

from decaenv.doctor.fix import Fixer, is_removable, plan
from decaenv.doctor.model import Check, FixAction, Report, fail, ok


def _report(*fixes_per_check):
    checks, results = [], {}
    for i, fixes in enumerate(fixes_per_check):
        cid = f"c{i}"
        checks.append(Check(cid, cid, "extension", lambda c: None))
        results[cid] = fail("x", fixes=tuple(fixes)) if fixes else ok("x")
    return Report(checks, results)


def test_plan_deduplicates_drops_nested_removals_and_orders_package_changes_last(tmp_path):
    lock = str(tmp_path / "ext" / "lock")
    report = _report(
        [FixAction("pip-install", "install ninja", {"specs": ["ninja"]}, needs_yes=True),
         FixAction("remove-path", "lock", {"path": lock})],
        [FixAction("remove-path", "partial", {"path": str(tmp_path / "ext")}),
         FixAction("remove-path", "lock", {"path": lock})],
    )
    actions = plan(report)
    assert [a.description for a in actions] == ["partial", "install ninja"]


def test_no_build_action_when_the_build_probe_failed():
    from decaenv.doctor.model import warn

    report = _report([FixAction("build-rasterizer", "build", {})])
    assert [a.kind for a in plan(report)] == ["build-rasterizer"]
    report.checks.append(Check("rasterizer-build", "b", "extension", lambda c: None))
    report.results["rasterizer-build"] = warn("the CPU extension does not build: gcc too new")
    assert plan(report) == []


def test_is_removable_fence(tmp_path):
    root = tmp_path / "torch_extensions"
    (root / "ext").mkdir(parents=True)
    assert is_removable(root / "ext", [root])
    assert not is_removable(root, [root])  # never the root itself
    assert not is_removable(tmp_path / "elsewhere", [root])
    assert not is_removable(Path("/usr/lib/x"), [Path("/usr/lib")])  # system folders never, even as a root
    (root / "escape").symlink_to(tmp_path / "precious")
    assert not is_removable(root / "escape", [root])


def _fixer(tmp_path, **kw):
    return Fixer("/nonexistent/python", tmp_path / "data", [str(tmp_path / "ext")], say=lambda s: None, **kw)


def test_remove_and_dry_run(tmp_path):
    folder = tmp_path / "ext" / "partial"
    folder.mkdir(parents=True)
    (folder / "a.o").write_text("x")
    action = FixAction("remove-path", "partial", {"path": str(folder)})
    dry = _fixer(tmp_path, dry_run=True).apply([action])
    assert dry[0].state == "planned" and dry[0].message == f"rm -rf {folder}" and folder.exists()
    done = _fixer(tmp_path).apply([action])
    assert done[0].state == "done" and not folder.exists()


def test_refuses_paths_outside_the_fence(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    outcome = _fixer(tmp_path).apply([FixAction("remove-path", "x", {"path": str(precious)})])[0]
    assert outcome.state == "failed" and "refusing" in outcome.message and precious.exists()


def test_package_changes_need_yes(tmp_path):
    action = FixAction("pip-install", "install ninja", {"specs": ["ninja"]}, needs_yes=True)
    left = _fixer(tmp_path).apply([action])[0]
    assert left.state == "left" and "/nonexistent/python -m pip install ninja" in left.message
    tried = _fixer(tmp_path, yes=True).apply([action])[0]
    assert tried.state == "failed"  # the interpreter does not exist: reported, not raised


def test_convert_flame_writes_a_pickle_free_npz(tmp_path):
    import numpy as np

    from decaenv.doctor.probes_env import _FakeCsc, _tiny_flame
    from decaenv.loaders.legacy_pickle import ChumpyCh, dumps

    model = _tiny_flame(np, ChumpyCh)
    src = tmp_path / "generic_model.pkl"
    src.write_bytes(dumps(model, protocol=2, impersonate={id(ChumpyCh): ("chumpy.ch", "Ch"),
                                                          id(_FakeCsc): ("scipy.sparse.csc", "csc_matrix")}))
    dst = tmp_path / "generic_model.npz"
    outcome = _fixer(tmp_path).apply([FixAction("convert-flame", "convert", {"src": str(src), "dst": str(dst)})])[0]
    assert outcome.state == "done"
    with np.load(dst, allow_pickle=False) as data:
        assert np.array_equal(data["shapedirs"], model["shapedirs"].x)


@pytest.mark.skipif(os.name == "nt", reason="POSIX paths")
def test_commands_for_every_kind(tmp_path):
    fixer = _fixer(tmp_path)
    kinds = {"remove-path": {"path": "/x"}, "convert-flame": {"src": "a.pkl", "dst": "a.npz"},
             "build-rasterizer": {}, "fetch": {"ids": ["deca-model"]},
             "pip-install": {"args": ["torch", "--index-url", "u"]}}
    commands = {k: fixer.command(FixAction(k, k, v)) for k, v in kinds.items()}
    assert commands["fetch"].endswith("fetch deca-model") and commands["build-rasterizer"] == "decaenv build"
    assert commands["pip-install"] == "/nonexistent/python -m pip install torch --index-url u"

"""The check registry: ids, categories, requirements, selection, and the troubleshooting data of every check."""

import re

import pytest

from decaenv.doctor.api import check_registry
from decaenv.doctor.model import CATEGORIES, Check, ok
from decaenv.doctor.registry import Registry
from decaenv.errors import UsageError

REGISTRY = check_registry()


def _check(cid, category="python", requires=(), slow=False):
    return Check(cid, cid.title(), category, lambda ctx: ok("x"), requires=tuple(requires), slow=slow)


CAPABILITY_CHECKS = {"bf16"}


def test_every_registered_check_is_documented():
    ids = [c.id for c in REGISTRY.all()]
    assert len(ids) == len(set(ids)) >= 25
    for item in REGISTRY.all():
        assert re.match(r"^[a-z0-9]+(-[a-z0-9]+)*$", item.id), item.id
        # bf16 reports what this CPU/GPU offers for an opt-in speed-up; no failure mode of failure-modes.md is its own
        assert item.fm or item.id in CAPABILITY_CHECKS, f"{item.id} guards no failure mode"
        assert item.symptoms and item.cause and item.fix, f"{item.id} lacks troubleshooting data"
        assert item.func.__doc__, f"{item.id} has no docstring"


def test_every_failure_mode_of_the_doctor_domain_is_guarded():
    guarded = {fm for c in REGISTRY.all() for fm in c.fm}
    # Install/run failures the doctor can observe (training, EMOCA/SPECTRE and output-content ones are not).
    expected = {
        f"FM{n:02d}"
        for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 29, 31, 32, 33, 34, 39)
    }
    assert expected <= guarded, sorted(expected - guarded)


def test_categories_cover_all_and_display_order_follows_them():
    order = [c.category for c in REGISTRY.all()]
    positions = [{name: i for i, (name, _) in enumerate(CATEGORIES)}[c] for c in order]
    assert positions == sorted(positions)
    assert {c for c, _ in CATEGORIES} == set(order)


def test_rejects_bad_ids_duplicates_categories_and_fm():
    reg = Registry()
    reg.add(_check("good-id"))
    for bad in (
        _check("Bad_Id"),
        _check("good-id"),
        _check("x", category="nope"),
        Check("y", "Y", "python", lambda c: ok(""), fm=("FM99",)),
    ):
        with pytest.raises(ValueError):
            reg.add(bad)


def test_validate_finds_unknown_requirements_and_cycles():
    reg = Registry()
    reg.add(_check("a", requires=("b",)))
    with pytest.raises(ValueError, match="unknown"):
        reg.validate()
    reg.add(_check("b", requires=("a",)))
    with pytest.raises(ValueError, match="cycle"):
        reg.validate()


def test_select_by_id_category_and_requirement_closure():
    reg = Registry()
    for item in (
        _check("base", "torch"),
        _check("mid", "torch", ("base",)),
        _check("leaf", "data", ("mid",)),
        _check("other", "platform"),
    ):
        reg.add(item)
    shown, needed = reg.select(["leaf"])
    assert [c.id for c in shown] == ["leaf"]
    assert {c.id for c in needed} == {"leaf", "mid", "base"}
    shown, _ = reg.select(["torch"])
    assert [c.id for c in shown] == ["base", "mid"]
    assert [c.id for c in reg.topological(["leaf", "mid", "base"])] == ["base", "mid", "leaf"]


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UsageError) as err:
        REGISTRY.select(["nvcc-torch-mach"])
    assert "nvcc-torch-match" in err.value.one_line()


def test_slow_checks_come_last_in_run_order():
    order = REGISTRY.topological([c.id for c in REGISTRY.all()])
    slow = [i for i, c in enumerate(order) if c.slow]
    fast = [i for i, c in enumerate(order) if not c.slow]
    assert slow and min(slow) > max(fast)


def test_check_registry_is_the_filled_registry_and_replace_swaps_in_place():
    assert check_registry() is REGISTRY and "torch" in REGISTRY
    reg = Registry()
    first, second = _check("a"), _check("b")
    reg.add(first)
    reg.add(second)
    other = Check("a", "Other", "python", lambda ctx: ok("y"))
    assert reg.replace(other) is first and reg.get("a") is other
    assert [c.id for c in reg.all()] == ["a", "b"]  # the position is kept
    with pytest.raises(KeyError):
        reg.replace(_check("unknown"))

"""The undo stack: every change is recorded and undone in reverse, restoring the exact objects."""

import logging
import types

import pytest

from decaenv.patches import NOTSET, Patcher


class Thing:
    plain = "plain"

    @staticmethod
    def static():
        return "static"

    @classmethod
    def klass(cls):
        return "class"


class Child(Thing):
    pass


def test_setattr_undo_restores_identity_and_descriptors():
    before = dict(vars(Thing))
    p = Patcher()
    p.setattr(Thing, "plain", "new")
    p.setattr(Thing, "static", lambda: "x")
    p.setattr(Thing, "klass", lambda: "y")
    assert Thing.plain == "new"
    p.undo()
    assert all(vars(Thing)[k] is v for k, v in before.items())
    assert isinstance(vars(Thing)["static"], staticmethod) and Thing.static() == "static"
    assert Thing.klass() == "class" and len(p) == 0


def test_inherited_attribute_is_restored_by_deletion():
    p = Patcher()
    p.setattr(Child, "plain", "child-only")
    assert "plain" in vars(Child)
    p.undo()
    assert "plain" not in vars(Child) and Child.plain == "plain"


def test_refuses_missing_attribute_unless_told():
    p = Patcher()
    with pytest.raises(AttributeError, match="raising=False"):
        p.setattr(Thing, "nope", 1)
    assert not hasattr(Thing, "nope") and len(p) == 0
    p.setattr(Thing, "nope", 1, raising=False)
    assert p.changes[0].old is NOTSET
    p.undo()
    assert not hasattr(Thing, "nope")


def test_module_with_lazy_getattr():
    mod = types.ModuleType("lazy")
    mod.__getattr__ = lambda name: f"lazy-{name}" if name == "thing" else (_ for _ in ()).throw(AttributeError(name))
    p = Patcher()
    p.setattr(mod, "thing", "patched")  # exists (lazily), so no raising=False needed
    assert mod.thing == "patched"
    p.undo()
    assert "thing" not in vars(mod) and mod.thing == "lazy-thing"


def test_items_and_deletions():
    d = {"a": 1}
    p = Patcher()
    p.setitem(d, "a", 2)
    p.setitem(d, "b", 3)
    p.delitem(d, "a")
    assert d == {"b": 3}
    with pytest.raises(KeyError):
        p.delitem(d, "zzz")
    p.delitem(d, "zzz", raising=False)
    p.delattr(Thing, "plain")
    assert not hasattr(Thing, "plain")
    with pytest.raises(AttributeError):
        p.delattr(Child, "plain")  # inherited: Child has no own attribute to delete
    p.undo()
    assert d == {"a": 1} and Thing.plain == "plain"


def test_undo_in_reverse_order_for_the_same_name():
    d = {"k": "orig"}
    p = Patcher()
    p.setitem(d, "k", "one")
    p.setitem(d, "k", "two")
    p.undo()
    assert d == {"k": "orig"}


def test_owner_scoped_undo_and_shadowing_is_refused():
    d = {}
    p = Patcher()
    with p.owned_by("a"):
        p.setitem(d, "x", "a")
        p.setitem(d, "shared", "a")
    with p.owned_by("b"):
        p.setitem(d, "y", "b")
        p.setitem(d, "shared", "b")
    with pytest.raises(RuntimeError, match="b changed it later"):
        p.undo(owner="a")
    assert p.undo(owner="b") == 2
    assert d == {"x": "a", "shared": "a"}
    assert p.undo(owner="a") == 2 and d == {}


def test_context_undoes_on_exception():
    with pytest.raises(ZeroDivisionError):
        with Patcher.context() as p:
            p.setattr(Thing, "plain", "inside")
            1 / 0
    assert Thing.plain == "plain"


def test_undo_after_someone_else_changed_it_warns_and_restores(caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("decaenv"), "propagate", True)  # CLI tests may have turned it off
    p = Patcher()
    p.setattr(Thing, "plain", "ours")
    Thing.plain = "theirs"
    with caplog.at_level("WARNING", logger="decaenv"):
        p.undo()
    assert Thing.plain == "plain" and "changed by someone else" in caplog.text

"""Every shim: apply then undo restores the original objects, double apply is a no-op, the context manager
undoes on exceptions; and each shim does what it claims."""

import dataclasses
import datetime
import inspect
import io
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

from decaenv import patches
from decaenv.patches import NOTSET, registry
from decaenv.patches._manager import PATCHER

torch = pytest.importorskip("torch")
skimage_transform = pytest.importorskip("skimage.transform")

ALL_IDS = registry.ids()


def _targets(fa):
    """Every object a shim may change, with a snapshot function each."""
    import torch.utils.cpp_extension as cpp_extension

    return {
        "inspect": inspect, "numpy": np, "torch": torch, "skimage.transform": skimage_transform,
        "torch.utils.cpp_extension": cpp_extension,
        "LandmarksType": fa.LandmarksType, "LandmarksType._member_map_": fa.LandmarksType._member_map_,
        "FaceAlignment": fa.FaceAlignment, "sys.modules": sys.modules,
    }


def _snapshot(obj):
    if obj is sys.modules:
        return {k: v for k, v in sys.modules.items()
                if k.split(".")[0] in ("chumpy", "pytorch3d", "standard_rasterize_cuda")}
    return dict(obj) if isinstance(obj, dict) else dict(vars(obj))


LAZY = ("numpy", "torch", "skimage.transform")  # they add attributes themselves when first accessed


def _assert_same(before, after, label):
    assert label in LAZY or set(after) == set(before), (label, set(after) ^ set(before))
    for key, value in before.items():
        assert after.get(key, NOTSET) is value, f"{label}.{key} not restored"


@pytest.mark.parametrize("patch_id", ALL_IDS)
def test_apply_undo_restores_identity_and_double_apply_is_noop(patch_id, fake_face_alignment):
    targets = _targets(fake_face_alignment)
    before = {label: _snapshot(obj) for label, obj in targets.items()}
    with patches.active(patch_id) as applied:
        assert applied == [patch_id] and patches.is_active(patch_id)
        mine = [c for c in PATCHER.changes if c.owner == patch_id]
        assert mine, "the shim changed nothing here"
        assert all(any(c.target is t for t in targets.values()) for c in mine), "a change outside the known targets"
        assert patches.apply(patch_id) == []
        with patches.active(patch_id) as again:
            assert again == []
        assert patches.is_active(patch_id)
        assert [c for c in PATCHER.changes if c.owner == patch_id] == mine
    assert not patches.is_active(patch_id) and len(PATCHER) == 0
    for change in mine:
        assert change.old is NOTSET or change.new is not change.old
    for label, obj in targets.items():
        _assert_same(before[label], _snapshot(obj), label)
    # names the shim added are gone again
    for change in mine:
        if change.old is NOTSET and change.kind == "attr":
            assert change.name not in vars(change.target)


@pytest.mark.parametrize("patch_id", ALL_IDS)
def test_context_manager_undoes_on_exception(patch_id, fake_face_alignment):
    before = {label: _snapshot(obj) for label, obj in _targets(fake_face_alignment).items()}
    with pytest.raises(KeyError, match="boom"):
        with patches.active(patch_id):
            assert patches.is_active(patch_id)
            raise KeyError("boom")
    assert patches.active_ids() == ()
    for label, obj in _targets(fake_face_alignment).items():
        _assert_same(before[label], _snapshot(obj), label)


def test_apply_all_undo_all_and_no_shared_targets(fake_face_alignment):
    applied = patches.apply_all()
    try:
        assert set(applied) == set(ALL_IDS)
        keys = [(id(c.target), c.name) for c in PATCHER.changes]
        assert len(keys) == len(set(keys)), "two shims change the same attribute"
        assert patches.apply_all() == []
    finally:
        undone = patches.undo_all()
    assert undone == list(reversed(applied)) and len(PATCHER) == 0


def test_not_needed_is_skipped_unless_forced(fake_face_alignment):
    env = patches.Environment({"numpy": "1.23.5"})
    with patches.active("numpy-aliases", env=env) as applied:
        assert applied == [] and "int" not in vars(np)
    with patches.active("numpy-aliases", env=env, force=True) as applied:
        assert applied == ["numpy-aliases"]


def test_unknown_id_is_a_usage_error():
    from decaenv.errors import UsageError

    with pytest.raises(UsageError, match="unknown shim 'numpy-alias'"):
        with patches.active("numpy-alias"):
            pass


def test_failing_shim_leaves_nothing_behind(monkeypatch):
    from decaenv.patches import numpy_aliases

    def half_then_fail(patcher, config):
        patcher.setattr(np, "decaenv_test_marker", 1, raising=False)
        raise RuntimeError("shim bug")

    broken = dataclasses.replace(numpy_aliases.PATCH, apply=half_then_fail)
    monkeypatch.setitem(registry._BY_ID, "numpy-aliases", broken)
    with pytest.raises(RuntimeError, match="shim bug"):
        patches.apply("numpy-aliases")
    assert not hasattr(np, "decaenv_test_marker") and len(PATCHER) == 0 and patches.active_ids() == ()


# -- behaviour of each shim ------------------------------------------------------------------------------------

def test_numpy_aliases_add_only_missing_names():
    own_bool = np.__dict__.get("bool", NOTSET)
    with patches.active("numpy-aliases"):
        namespace = {}
        exec("from numpy import bool, int, float, complex, object, unicode, str, nan, inf", namespace)
        assert namespace["int"] is int and namespace["unicode"] is str and np.float is float
        assert np.__dict__.get("bool", NOTSET) is own_bool  # numpy 2's np.bool is never replaced
        assert np.float_ is np.float64 and np.NaN != np.NaN
    assert "int" not in vars(np) and "float_" not in vars(np)


def test_numpy_ma_still_imports_with_the_aliases():
    code = ("from decaenv import patches\n"
            "with patches.active('numpy-aliases'):\n"
            "    import numpy as np, numpy.ma\n"
            "    print(int(np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]).sum()), np.bool is np.bool_)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "True"]


def test_getargspec():
    def f(a, b=2, *args, **kw):
        pass

    with patches.active("inspect-getargspec"):
        spec = inspect.getargspec(f)
        assert spec.args == ["a", "b"] and spec.varargs == "args" and spec.keywords == "kw" and spec.defaults == (2,)
        with pytest.raises(ValueError, match="keyword-only"):
            inspect.getargspec(lambda *, x: x)
    assert not hasattr(inspect, "getargspec")


def test_face_alignment_enum_aliases(fake_face_alignment):
    lt = fake_face_alignment.LandmarksType
    with patches.active("face-alignment-api"):
        assert lt._2D is lt.TWO_D and lt._3D is lt.THREE_D and lt._2halfD is lt.TWO_HALF_D
        assert lt["_2D"] is lt.TWO_D and list(lt) == [lt.TWO_D, lt.TWO_HALF_D, lt.THREE_D]
        fan = fake_face_alignment.FaceAlignment(lt._2D, flip_input=False)
        assert fan.landmarks_type == 1
    with pytest.raises(AttributeError):
        lt._2D
    with pytest.raises(KeyError):
        lt["_2D"]


def test_face_alignment_cpu_defaults(fake_face_alignment):
    from decaenv.patches.face_alignment_device import cpu_defaults

    fa = fake_face_alignment
    with patches.active("face-alignment-cpu"):
        assert not torch.cuda.is_available()
        fan = fa.FaceAlignment(fa.LandmarksType.TWO_D, flip_input=False)
        assert (fan.device, fan.compile) == ("cpu", False)
        fan = fa.FaceAlignment(fa.LandmarksType.TWO_D, 4, "cuda:1")  # positional device is the caller's choice
        assert (fan.device, fan.compile) == ("cuda:1", True)
        fan = fa.FaceAlignment(fa.LandmarksType.TWO_D, device="cpu", compile=True)
        assert (fan.device, fan.compile) == ("cpu", True)
    init = fa.FaceAlignment.__init__
    with_cuda = cpu_defaults(init, cuda_available=lambda: True)
    obj = object.__new__(fa.FaceAlignment)
    with_cuda(obj, 1)
    assert (obj.device, obj.compile) == ("cuda", True)


class _Unsafe:
    """Something weights_only=True refuses to unpickle."""


@pytest.fixture
def unsafe_checkpoint(tmp_path):
    path = tmp_path / "deca_model.tar"
    torch.save({"E_flame": {"w": torch.arange(4.0)}, "when": datetime.date(2020, 1, 1)}, path)
    from decaenv.patches.torch_load import sha256_of_stream

    with open(path, "rb") as fh:
        return path, sha256_of_stream(fh)


def test_torch_load_trusts_only_the_declared_digest(unsafe_checkpoint):
    path, digest = unsafe_checkpoint
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    with patches.active("torch-load", config=patches.PatchConfig(trusted_sha256={"0" * 64})):
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)  # not trusted: torch's safe default stays
    with patches.active("torch-load", config=patches.PatchConfig(trusted_sha256={digest.upper()})):
        ckpt = torch.load(path)
        assert ckpt["when"] == datetime.date(2020, 1, 1) and torch.equal(ckpt["E_flame"]["w"], torch.arange(4.0))
        stream = io.BytesIO(path.read_bytes())
        assert torch.load(stream)["when"].year == 2020
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)  # the caller's explicit choice wins
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_torch_load_adds_cpu_map_location_without_cuda():
    from decaenv.patches.torch_load import trusted_load

    calls = []

    def fake_load(f, *args, **kwargs):
        calls.append((args, kwargs))

    class NoCuda:
        class cuda:
            is_available = staticmethod(lambda: False)

    class WithCuda:
        class cuda:
            is_available = staticmethod(lambda: True)

    trusted_load(fake_load, NoCuda, frozenset())("x.tar")
    trusted_load(fake_load, NoCuda, frozenset())("x.tar", map_location="cuda:0")
    trusted_load(fake_load, NoCuda, frozenset())("x.tar", "meta")
    trusted_load(fake_load, WithCuda, frozenset())("x.tar")
    assert calls == [((), {"map_location": "cpu"}), ((), {"map_location": "cuda:0"}), (("meta",), {}), ((), {})]


def test_bad_trusted_digest_is_a_usage_error():
    from decaenv.errors import UsageError

    with pytest.raises(UsageError, match="not a sha256"):
        patches.PatchConfig(trusted_sha256={"abc"})


@pytest.mark.parametrize("shape_a, shape_b, dim", [((3, 3), (3, 3), -1), ((4, 3), (4, 3), -1),
                                                    ((3, 5), (3, 5), 0), ((2, 3, 5), (1, 3, 5), 1)])
def test_torch_cross_gets_an_explicit_dim(shape_a, shape_b, dim):
    from decaenv.patches.torch_cross import explicit_dim

    seen = {}
    wrapped = explicit_dim(lambda a, b, *args, **kw: seen.update(kw), torch)
    wrapped(torch.zeros(shape_a), torch.zeros(shape_b))
    assert seen == {"dim": dim}
    a, b = torch.randn(shape_a), torch.randn(shape_b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the deprecation warning must not fire
        with patches.active("torch-cross-dim"):
            got = torch.cross(a, b)
            explicit = torch.cross(a, b, dim=0) if dim == 0 else None
    assert torch.equal(got, torch.linalg.cross(a, b, dim=dim))
    if explicit is not None:
        assert torch.equal(got, explicit)


def test_skimage_multichannel_keyword():
    image = np.random.default_rng(0).random((8, 8, 3))
    with patches.active("skimage-multichannel"):
        got = skimage_transform.rescale(image, 0.5, multichannel=True)
        assert np.array_equal(got, skimage_transform.rescale(image, 0.5, channel_axis=-1))
        gray = skimage_transform.rescale(image[..., 0], 0.5, multichannel=False)
        assert gray.shape == (4, 4)
        with pytest.raises(TypeError, match="both"):
            skimage_transform.rescale(image, 0.5, multichannel=True, channel_axis=-1)
    with pytest.raises(TypeError, match="multichannel"):
        skimage_transform.rescale(image, 0.5, multichannel=True)


@pytest.mark.filterwarnings("ignore:Please import:DeprecationWarning")  # scipy.sparse.csc in the old pickle
def test_chumpy_stand_in_lets_plain_pickle_read_flame(flame_pickle):
    path, arrays = flame_pickle
    with pytest.raises(ModuleNotFoundError, match="chumpy"):
        with open(path, "rb") as fh:
            pickle.load(fh, encoding="latin1")
    with patches.active("chumpy-stand-in"):
        with open(path, "rb") as fh:
            model = pickle.load(fh, encoding="latin1")  # what DECA's FLAME.py does
        shapedirs = np.array(model["shapedirs"], dtype=np.float32)  # what DECA's to_np does
        assert np.array_equal(shapedirs, arrays["shapedirs"].astype(np.float32))
        assert np.array_equal(np.array(model["shapedirs"]), arrays["shapedirs"])
        assert "scipy.sparse" in str(type(model["J_regressor"]))
        import chumpy

        with pytest.raises(AttributeError, match="unpickling only"):
            chumpy.array
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules


def test_chumpy_stand_in_never_shadows_an_imported_chumpy(monkeypatch):
    real = type(sys)("chumpy")
    monkeypatch.setitem(sys.modules, "chumpy", real)
    with patches.active("chumpy-stand-in", force=True) as applied:
        assert applied == ["chumpy-stand-in"] and sys.modules["chumpy"] is real

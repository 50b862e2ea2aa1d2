"""Rodrigues, LBS and the dynamic-contour row against hand-computed values (deca-spec §4.2, §4.3)."""

import math

import pytest
import torch

from decaenv.runtime import lbs


def _rodrigues_by_hand(r, eps=1e-8):
    """R = I + sinθ·K + (1−cosθ)·K² with θ = ‖r + eps‖ (eps on each component), k = r/θ, in float64."""
    theta = math.sqrt(sum((c + eps) ** 2 for c in r))
    kx, ky, kz = (c / theta for c in r)
    K = torch.tensor([[0, -kz, ky], [kz, 0, -kx], [-ky, kx, 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(theta) * K + (1 - math.cos(theta)) * K @ K


def test_rodrigues_zero_is_exactly_identity():
    R = lbs.batch_rodrigues(torch.zeros(4, 3))
    assert torch.equal(R, torch.eye(3).expand(4, 3, 3))


def test_rodrigues_quarter_turns():
    r = torch.tensor([[0.0, 0.0, math.pi / 2], [math.pi, 0.0, 0.0], [0.0, -math.pi / 2, 0.0]])
    R = lbs.batch_rodrigues(r)
    expected = torch.tensor(
        [[[0, -1, 0], [1, 0, 0], [0, 0, 1]], [[1, 0, 0], [0, -1, 0], [0, 0, -1]], [[0, 0, -1], [0, 1, 0], [1, 0, 0]]],
        dtype=torch.float32,
    )
    assert torch.allclose(R, expected, atol=1e-6)


def test_rodrigues_adds_eps_to_each_component():
    """In float64 the +1e-8 per component is visible: it matches the formula with eps, not exact Rodrigues."""
    r = (0.3, -0.2, 0.9)
    R = lbs.batch_rodrigues(torch.tensor([r], dtype=torch.float64))[0]
    assert torch.allclose(R, _rodrigues_by_hand(r), atol=1e-15, rtol=0)
    exact = _rodrigues_by_hand(r, eps=0.0)
    assert (R - exact).abs().max() > 1e-9


def _tiny_model():
    """3 vertices, 2 joints (root at the origin, child at (0, 1, 0)); v0 on the root, v1 on the child, v2 half/half."""
    v = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 0.0]])
    j_reg = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5 * 0.0]])  # child joint = 0.5 * v1 = (0, 1, 0)
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    parents = torch.tensor([-1, 0])
    shapedirs = torch.zeros(3, 3, 1)
    posedirs = torch.zeros(9, 9)
    return v, shapedirs, posedirs, j_reg, parents, weights


def _run(pose, betas=None, shapedirs=None, posedirs=None):
    v, sd, pd, j_reg, parents, weights = _tiny_model()
    sd = sd if shapedirs is None else shapedirs
    pd = pd if posedirs is None else posedirs
    betas = torch.zeros(1, sd.shape[-1]) if betas is None else betas
    verts, joints = lbs.lbs(betas, torch.tensor([pose]), v, sd, pd, j_reg, parents, weights)
    return verts[0], joints[0]


def test_lbs_identity_pose_returns_the_template_exactly():
    verts, joints = _run([0.0] * 6)
    assert torch.equal(verts, _tiny_model()[0])
    assert torch.equal(joints, torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))


def test_lbs_child_rotation_by_hand():
    # child joint turns 90° about z round (0, 1, 0): v1 (0,2,0) → (-1,1,0); v2 blends (1,1,0) and (0,2,0).
    verts, _ = _run([0.0, 0.0, 0.0, 0.0, 0.0, math.pi / 2])
    expected = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.5, 1.5, 0.0]])
    assert torch.allclose(verts, expected, atol=1e-6)


def test_lbs_root_rotation_carries_the_child():
    verts, _ = _run([0.0, 0.0, math.pi / 2, 0.0, 0.0, 0.0])
    expected = torch.tensor([[0.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [-1.0, 1.0, 0.0]])
    assert torch.allclose(verts, expected, atol=1e-6)


def test_lbs_shape_blend_and_pose_correctives_by_hand():
    shapedirs = torch.zeros(3, 3, 1)
    shapedirs[1, 1, 0] = 1.0  # beta moves v1 up by beta (and with it the child joint by beta/2)
    posedirs = torch.zeros(9, 9)
    posedirs[4, 0] = 0.25  # (R_child - I)[1, 1] moves v0 along x
    angle = math.pi / 2
    verts, joints = _run([0.0, 0.0, 0.0, 0.0, 0.0, angle], torch.tensor([[2.0]]), shapedirs, posedirs)
    # shaped: v1 = (0, 4, 0), child joint (0, 2, 0); pose feature (R - I)[1, 1] = cos(90°) - 1 = -1
    assert torch.allclose(joints[1], torch.tensor([0.0, 2.0, 0.0]))
    assert torch.allclose(verts[0], torch.tensor([-0.25, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(verts[1], torch.tensor([-2.0, 2.0, 0.0]), atol=1e-6)


def test_rigid_transforms_equal_decas_formulation():
    """A_j = G_j − [0 | G_j·[J_j; 0]] built the way DECA/smplx build it, on random poses (float64)."""
    torch.manual_seed(0)
    parents = torch.tensor([-1, 0, 1, 1, 1])
    rot = lbs.batch_rodrigues(torch.randn(10, 3, dtype=torch.float64)).view(2, 5, 3, 3)
    joints = torch.randn(2, 5, 3, dtype=torch.float64)
    ours = lbs.rigid_transforms(rot, joints, parents)
    rel = joints.clone()
    rel[:, 1:] -= joints[:, parents[1:]]
    local = torch.cat(
        [torch.cat([rot, rel[..., None]], -1), torch.tensor([0, 0, 0, 1.0], dtype=torch.float64).expand(2, 5, 1, 4)], -2
    )
    chain = [local[:, 0]]
    for i in range(1, 5):
        chain.append(chain[parents[i]] @ local[:, i])
    G = torch.stack(chain, 1)
    A = G.clone()
    A[..., :3, 3] -= torch.einsum("bjik,bjk->bji", G[..., :3, :3], joints)
    assert torch.allclose(ours, A[..., :3, :], atol=1e-12)


def test_vertices2landmarks_is_the_barycentric_sum():
    verts = torch.arange(15.0).view(1, 5, 3)
    faces = torch.tensor([[0, 1, 2], [2, 3, 4]])
    out = lbs.vertices2landmarks(
        verts, faces, torch.tensor([[1, 0]]), torch.tensor([[[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]])
    )
    expected0 = 0.2 * verts[0, 2] + 0.3 * verts[0, 3] + 0.5 * verts[0, 4]
    assert torch.allclose(out[0, 0], expected0) and torch.equal(out[0, 1], verts[0, 0])


@pytest.mark.parametrize(
    "yaw_deg,row",
    [
        (0.0, 0),
        (10.0, 10),
        (20.3, 20),
        (38.6, 39),
        (39.0, 39),
        (39.6, 39),
        (60.0, 39),  # clamp at 39
        (0.4, 0),
        (-0.4, 0),
        (1.6, 2),
        (-1.6, 41),  # rounding, -0 counts as 0
        (-10.0, 49),
        (-38.4, 77),
        (-38.6, 78),
        (-39.4, 78),
        (-39.6, 78),
        (-75.0, 78),
    ],
)
def test_dynamic_contour_row_by_hand(yaw_deg, row):
    """Head turned about y by `yaw_deg`: row = round(min(yaw, 39)) for yaw ≥ 0, 39 − a below, 78 past −39."""
    full_pose = torch.zeros(1, 15, dtype=torch.float64)
    full_pose[0, 1] = math.radians(yaw_deg)
    assert int(lbs.dynamic_contour_rows(full_pose)[0]) == row


def test_dynamic_contour_uses_neck_times_root():
    """R_rel = R_root · R_neck: with the root turned +20° and the neck −5°, the yaw is 15°."""
    full_pose = torch.zeros(2, 15, dtype=torch.float64)
    full_pose[:, 1] = math.radians(20)
    full_pose[1, 4] = math.radians(-5)
    assert lbs.dynamic_contour_rows(full_pose).tolist() == [20, 15]

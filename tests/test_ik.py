import numpy as np
import pytest

from dexgen.sim import constants as C
from dexgen.sim.env import EnvConfig, HandEnv
from dexgen.sim.ik import FingertipIK


@pytest.fixture(scope="module")
def ik():
    return FingertipIK()


def _random_q(ik, rng, n=None):
    lo, hi = ik.joint_range.T
    return rng.uniform(lo, hi, None if n is None else (n, C.NUM_JOINTS))


def _tip_errors(ik, q, targets):
    return np.linalg.norm(ik.forward(q) - targets, axis=1)


@pytest.mark.parametrize("wrist", ["palm_up", "sideways"])
def test_forward_matches_env_fingertips(ik, wrist):
    # The palm frame must not depend on the wrist: the IK's palm-up model has to agree with a turned hand too.
    env = HandEnv(EnvConfig(num_envs=2, objects="cube_60", wrist=wrist, num_threads=1))
    for i in range(env.num_envs):
        q = env.sims.hand_q[i].copy()
        np.testing.assert_allclose(ik.forward(q), env.fingertips()[i], atol=1e-6)


def test_forward_shape_and_open_pose(ik):
    tips = ik.forward(np.array(C.OPEN_POSE))
    assert tips.shape == (C.NUM_FINGERTIPS, 3)
    assert (tips[:3, 0] > 0.05).all()  # open fingers reach past the palm's distal edge (+x)


@pytest.mark.parametrize("seed", range(8))
def test_reaches_reachable_targets(ik, seed):
    rng = np.random.default_rng(seed)
    q_true = _random_q(ik, rng)
    targets = ik.forward(q_true)
    lo, hi = ik.joint_range.T
    q_start = np.clip(q_true + rng.normal(0.0, 0.15, C.NUM_JOINTS), lo, hi)
    assert _tip_errors(ik, q_start, targets).max() > 5e-3  # the start really is off

    solution = ik.solve(q_start, targets)
    assert solution.shape == (C.NUM_JOINTS,)
    assert ((solution >= lo) & (solution <= hi)).all()
    assert _tip_errors(ik, solution, targets).max() < 1e-3


def test_solve_does_not_modify_inputs_and_keeps_a_solved_pose(ik):
    q = np.array(C.OPEN_POSE)
    targets = ik.forward(q)
    q_before, targets_before = q.copy(), targets.copy()
    np.testing.assert_array_equal(ik.solve(q, targets), q)  # already there: no iteration moves it
    np.testing.assert_array_equal(q, q_before)
    np.testing.assert_array_equal(targets, targets_before)


def test_start_outside_limits_is_clamped(ik):
    lo, hi = ik.joint_range.T
    q = hi + 0.3
    solution = ik.solve(q, ik.forward(np.array(C.OPEN_POSE)))
    assert ((solution >= lo) & (solution <= hi)).all()


@pytest.mark.parametrize("seed", range(4))
def test_unreachable_targets_give_limited_joints_and_less_error(ik, seed):
    rng = np.random.default_rng(100 + seed)
    q_start = _random_q(ik, rng)
    direction = rng.normal(size=(C.NUM_FINGERTIPS, 3))
    targets = ik.forward(q_start) + direction / np.linalg.norm(direction, axis=1, keepdims=True)  # 1 m away

    solution = ik.solve(q_start, targets)
    lo, hi = ik.joint_range.T
    assert np.isfinite(solution).all()
    assert ((solution >= lo) & (solution <= hi)).all()
    before, after = _tip_errors(ik, q_start, targets), _tip_errors(ik, solution, targets)
    assert (after <= before + 1e-9).all()
    assert after.sum() < before.sum()


def test_mask_keeps_fingers_fixed(ik):
    rng = np.random.default_rng(7)
    q_true = _random_q(ik, rng)
    targets = ik.forward(q_true)
    lo, hi = ik.joint_range.T
    q_start = np.clip(q_true + rng.normal(0.0, 0.15, C.NUM_JOINTS), lo, hi)
    mask = np.array([True, False, True, False])

    solution = ik.solve(q_start, targets, mask=mask)
    errors = _tip_errors(ik, solution, targets)
    for f in range(C.NUM_FINGERTIPS):
        joints = slice(4 * f, 4 * f + 4)
        if mask[f]:
            assert errors[f] < 1e-3
        else:
            np.testing.assert_array_equal(solution[joints], q_start[joints])

    np.testing.assert_array_equal(ik.solve(q_start, targets, mask=np.zeros(4, dtype=bool)), q_start)


def test_solve_batch_matches_solve(ik):
    rng = np.random.default_rng(3)
    q_true = _random_q(ik, rng, 3)
    targets = np.stack([ik.forward(q) for q in q_true])
    q_start = np.tile(C.OPEN_POSE, (3, 1))
    mask = np.array([[True] * 4, [True, False, True, True], [False] * 4])

    out = ik.solve_batch(q_start, targets, mask=mask)
    assert out.shape == (3, C.NUM_JOINTS)
    for i in range(3):
        np.testing.assert_array_equal(out[i], ik.solve(q_start[i], targets[i], mask=mask[i]))
    np.testing.assert_array_equal(ik.solve_batch(q_start, targets)[0], out[0])


def test_bad_inputs_raise_clear_errors(ik):
    q = np.array(C.OPEN_POSE)
    targets = ik.forward(q)
    with pytest.raises(ValueError, match=r"q must have shape \(16,\), got \(15,\)"):
        ik.forward(q[:15])
    with pytest.raises(ValueError, match=r"q must have shape \(16,\), got \(1, 16\)"):
        ik.solve(q[None], targets)
    with pytest.raises(ValueError, match=r"targets must have shape \(4, 3\), got \(12,\)"):
        ik.solve(q, targets.ravel())
    bad_q = q.copy()
    bad_q[3] = np.nan
    with pytest.raises(ValueError, match="q holds NaN or inf"):
        ik.solve(bad_q, targets)
    bad_targets = targets.copy()
    bad_targets[2, 1] = np.inf
    with pytest.raises(ValueError, match="targets holds NaN or inf"):
        ik.solve(q, bad_targets)
    with pytest.raises(ValueError, match="mask must be a bool array of shape"):
        ik.solve(q, targets, mask=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="mask must be a bool array of shape"):
        ik.solve(q, targets, mask=np.ones(4))

    qs, ts = np.tile(q, (2, 1)), np.stack([targets] * 2)
    with pytest.raises(ValueError, match=r"q must have shape \(N, 16\)"):
        ik.solve_batch(q, ts)
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 4, 3\) to match q"):
        ik.solve_batch(qs, ts[:1])
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 4\) to match q"):
        ik.solve_batch(qs, ts, mask=np.ones(4, dtype=bool))
    ts[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="hand 1: targets holds NaN or inf"):
        ik.solve_batch(qs, ts)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"damping": -0.1}, "damping"),
        ({"damping": 0.0}, "damping"),
        ({"iterations": 0}, "iterations"),
        ({"iterations": 2.5}, "iterations"),
        ({"max_step": 0.0}, "max_step"),
        ({"tolerance": float("nan")}, "tolerance"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FingertipIK(**kwargs)


def test_follow_moves_the_fingertips_by_the_commands_first_step():
    ik = FingertipIK()
    q = np.tile(ik.joint_range.mean(1), (2, 1))
    tips = np.stack([ik.forward(qi) for qi in q])
    frames = np.concatenate([q, q, tips.reshape(2, 12)], axis=1)
    command = np.zeros((2, 8, 4, 3))
    command[:, 0, :, 2] = 0.005  # every fingertip 5 mm up, then whatever follows
    command[:, 1:] = 1.0
    out = ik.follow(frames, command)
    np.testing.assert_array_equal(out, ik.solve_batch(q, tips + command[:, 0]))
    moved = np.stack([ik.forward(o) for o in out]) - tips
    assert np.abs(moved[..., 2] - 0.005).max() < 1e-3

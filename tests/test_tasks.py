import numpy as np
import pytest

from dexgen.sim import constants as C
from dexgen.sim.tasks import AXES, RotateConfig, StepState, make_task


def _state(n, *, angvel=(0.0, 0.0, 0.0), linvel=(0.0, 0.0, 0.0), pos=C.GRASP_CENTRE):
    z = np.zeros((n, 16))
    return StepState(
        q=z, qd=z, torque=z, targets=z,
        object_pos=np.tile(pos, (n, 1)), object_quat=np.tile([1.0, 0, 0, 0], (n, 1)),
        object_linvel=np.tile(linvel, (n, 1)), object_angvel=np.tile(angvel, (n, 1)), grasp_q=z,
    )  # fmt: skip


def test_rotation_reward_follows_the_signed_axis_and_clips():
    task = make_task("rotate", 2, RotateConfig(axes="+z,-z"))
    task.command[:] = [AXES["+z"], AXES["-z"]]
    terms, done = task.compute(_state(2, angvel=(0.0, 0.0, 0.3)))
    np.testing.assert_allclose(terms["rotate"], [0.3, -0.3])
    terms, _ = task.compute(_state(2, angvel=(0.0, 0.0, 5.0)))
    np.testing.assert_allclose(terms["rotate"], [0.5, -0.5])
    np.testing.assert_allclose(terms["overspeed"], [4.0, 4.0])  # the excess over 1 rad/s, either way round
    assert not done.any()
    assert set(terms) == set(task.scales)
    terms, _ = task.compute(_state(2, angvel=(0.0, 0.0, -0.8)))
    np.testing.assert_allclose(terms["overspeed"], [0.0, 0.0])
    assert task.scales["overspeed"] == 0.0  # off unless asked for (--reward overspeed=-0.5)


def test_drop_terminates_every_task():
    for name in ("rotate", "translate", "grasp_to_grasp"):
        task = make_task(name, 1)
        task.command[:] = 1.0  # any command
        terms, done = task.compute(_state(1, pos=(0.0, 0.0, -0.05)))
        assert done.all() and terms["drop"][0] == 1.0, name
        assert set(terms) == set(task.scales), name


def test_translation_progress_and_grasp_success():
    task = make_task("translate", 1)
    task.command[:] = AXES["+x"]
    terms, _ = task.compute(_state(1, linvel=(0.01, 0.0, 0.0)))
    assert terms["translate"][0] == pytest.approx(0.01)
    g2g = make_task("grasp_to_grasp", 1)
    g2g.command[:] = 0.0
    terms, done = g2g.compute(_state(1))
    assert terms["success"][0] == 1.0 and done[0]
    terms, done = g2g.compute(_state(1, pos=(0.0, 0.0, -0.05)))  # at the target grasp, but the object has fallen
    assert terms["success"][0] == 0.0 and terms["drop"][0] == 1.0 and done[0]


def test_grasp_progress_pays_for_the_error_removed_each_step():
    g2g = make_task("grasp_to_grasp", 1)
    g2g.command[:] = 0.5
    state = _state(1)
    terms, _ = g2g.compute(state)
    assert terms["joint_progress"][0] == 0.0  # no previous step to compare with
    state.q = np.full((1, 16), 0.2)
    terms, _ = g2g.compute(state)
    assert terms["joint_progress"][0] == pytest.approx(0.2)  # the error fell from 0.5 to 0.3 rad
    state.q = np.full((1, 16), 0.1)
    terms, _ = g2g.compute(state)
    assert terms["joint_progress"][0] == pytest.approx(-0.1)  # and a step back costs


def test_bad_names():
    with pytest.raises(ValueError, match="unknown task"):
        make_task("juggle", 1)
    with pytest.raises(ValueError, match="unknown axis"):
        make_task("rotate", 1, RotateConfig(axes="+w"))


def test_a_grasp_target_is_drawn_away_from_the_start():
    from dexgen.sim.env import EnvConfig, HandEnv
    from dexgen.sim.tasks import GraspToGraspConfig

    # above the median distance between this object's grasps (0.41 rad), so that unrestricted draws would miss it
    env = HandEnv(EnvConfig(num_envs=8, objects="cube_60", task="grasp_to_grasp", num_threads=1, seed=3),
                  task_config=GraspToGraspConfig(min_target_distance=0.45))  # fmt: skip
    start = env.sims.hand_q
    rms = np.sqrt(np.mean((env.task.command - start) ** 2, axis=-1))
    assert (rms >= env.task.config.min_target_distance).all()
    # a cache of one grasp leaves only that one: the farthest there is
    q = env.grasps["cube_60"].hand_q
    one = env.sample_grasp_q(np.arange(2), np.random.default_rng(0), away_from=q[:2], min_distance=10.0)
    far = np.argmax(np.sqrt(np.mean((q[None] - q[:2, None]) ** 2, axis=-1)), axis=1)
    np.testing.assert_array_equal(one, q[far])


def test_joint_rms_is_the_rms_over_the_last_axis():
    from dexgen.sim.tasks import joint_rms

    a = np.zeros((2, 3, 16))
    b = np.zeros((2, 3, 16))
    b[1, 2, :4] = 0.2  # four of sixteen joints off by 0.2 rad: RMS 0.1
    out = joint_rms(a, b)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[1, 2], 0.1)
    assert np.count_nonzero(out) == 1


def test_an_axis_given_as_numbers_rewards_turning_about_it_and_not_about_another():
    task = make_task("rotate", 1, RotateConfig(axes="0.3,0.2,0.93"))
    task.reset(np.arange(1), np.random.default_rng(0), None)
    axis = np.array([0.3, 0.2, 0.93]) / np.linalg.norm([0.3, 0.2, 0.93])
    np.testing.assert_allclose(task.command[0], axis)
    along, _ = task.compute(_state(1, angvel=tuple(0.3 * axis)))
    other = np.cross(axis, [1.0, 0.0, 0.0])
    other = 0.3 * other / np.linalg.norm(other)
    across, _ = task.compute(_state(1, angvel=tuple(other)))
    assert along["rotate"][0] == pytest.approx(0.3) and along["off_axis"][0] == pytest.approx(0.0, abs=1e-12)
    assert across["rotate"][0] == pytest.approx(0.0, abs=1e-12) and across["off_axis"][0] == pytest.approx(0.3)


@pytest.mark.parametrize("spec", ["0,0,0", "nan,0,1", "inf,1,0"])
def test_a_zero_or_non_finite_axis_is_refused_in_one_line(spec):
    with pytest.raises(ValueError, match="finite vector of nonzero length"):
        make_task("rotate", 1, RotateConfig(axes=spec))


def test_sphere_share_draws_unit_axes_over_the_sphere_and_keeps_the_named_ones_over_represented():
    task = make_task("rotate", 4000, RotateConfig(axes="all", sphere_share=0.5))
    task.reset(np.arange(4000), np.random.default_rng(1), None)
    np.testing.assert_allclose(np.linalg.norm(task.command, axis=-1), 1.0)
    signed = np.isclose(np.abs(task.command).max(axis=-1), 1.0)
    assert 0.45 < signed.mean() < 0.55  # the other half lies anywhere on the sphere
    assert np.abs(task.command[~signed].mean(axis=0)).max() < 0.05
    with pytest.raises(ValueError, match="sphere_share must be in"):
        make_task("rotate", 1, RotateConfig(sphere_share=1.5))

import re

import numpy as np
import pytest

from dexgen.sim import constants as C
from dexgen.sim.tasks import AXES, OFFSET_OBS_SCALE, RotateConfig, StepState, TranslateConfig, make_task


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


def test_grasp_success_needs_the_object_in_hand():
    g2g = make_task("grasp_to_grasp", 1)
    g2g.command[:] = 0.0
    terms, done = g2g.compute(_state(1))
    assert terms["success"][0] == 1.0 and done[0]
    terms, done = g2g.compute(_state(1, pos=(0.0, 0.0, -0.05)))  # at the target grasp, but the object has fallen
    assert terms["success"][0] == 0.0 and terms["drop"][0] == 1.0 and done[0]


def _translate(config: TranslateConfig, n: int = 1, seed: int = 0):
    task = make_task("translate", n, config)
    task.draw(np.arange(n), np.random.default_rng(seed), np.tile(C.GRASP_CENTRE, (n, 1)))
    return task


def test_translation_pays_for_approaching_the_target_and_charges_for_moving_away():
    task = _translate(TranslateConfig(axes="+x", min_distance=0.01, max_distance=0.01))
    start = np.array(C.GRASP_CENTRE)
    np.testing.assert_allclose(task.command[0], [0.01, 0.0, 0.0])
    np.testing.assert_allclose(task.target[0], start + [0.01, 0.0, 0.0])
    np.testing.assert_allclose(task.observation()[0], [0.01 * OFFSET_OBS_SCALE, 0.0, 0.0])
    toward, _ = task.compute(_state(1, pos=start + [0.001, 0.0, 0.0]))
    assert toward["progress"][0] == pytest.approx(0.001) and toward["distance"][0] == pytest.approx(0.009)
    np.testing.assert_allclose(task.observation()[0], [0.009 * OFFSET_OBS_SCALE, 0.0, 0.0])  # what remains
    away, _ = task.compute(_state(1, pos=start + [-0.001, 0.0, 0.0]))
    assert away["progress"][0] == pytest.approx(-0.002)  # 2 mm farther than the step before
    sideways, _ = task.compute(_state(1, pos=start + [-0.001, 0.004, 0.0]))
    assert sideways["progress"][0] < 0  # across the direction is farther too
    jump, _ = task.compute(_state(1, pos=start + [0.01, 0.0, 0.0]))
    assert jump["progress"][0] == pytest.approx(task.config.progress_clip)  # 11 mm in one step: clipped
    height, _ = task.compute(_state(1, pos=start + [0.01, 0.0, 0.01]))
    assert height["distance"][0] == pytest.approx(0.0) and height["progress"][0] == 0.0  # palm z is not commanded
    assert set(toward) == set(task.scales) and task.scales["distance"] == 0.0


@pytest.mark.parametrize(("dx", "held"), [(0.0, True), (0.0049, True), (-0.0049, True), (0.0051, False),
                                          (-0.0051, False)])  # fmt: skip
def test_the_hold_bonus_pays_only_within_the_tolerance(dx, held):
    task = _translate(TranslateConfig(axes="-y", min_distance=0.015, max_distance=0.015))
    target = task.target[0]
    terms, done = task.compute(_state(1, pos=target + [dx, 0.0, 0.0]))
    assert terms["hold"][0] == float(held) and not done[0]
    terms, done = task.compute(_state(1, pos=(target[0], target[1], -0.05)))  # at the target, but fallen
    assert terms["hold"][0] == 0.0 and terms["drop"][0] == 1.0 and done[0]


def test_translation_commands_lie_within_the_configured_distances_and_directions():
    n = 4000
    task = _translate(TranslateConfig(axes="all", min_distance=0.005, max_distance=0.02), n, seed=3)
    length = np.linalg.norm(task.command, axis=-1)
    assert length.min() >= 0.005 and length.max() <= 0.02 and np.all(task.command[:, 2] == 0)
    assert abs(np.mean(length) - 0.0125) < 0.0005  # lengths uniform between the two
    angle = np.arctan2(task.command[:, 1], task.command[:, 0])
    assert np.histogram(angle, bins=8, range=(-np.pi, np.pi))[0].min() > n / 8 * 0.85  # any angle, uniformly
    named = _translate(TranslateConfig(axes="+y,-x", min_distance=0.01, max_distance=0.02), n, seed=3)
    unit = named.command / np.linalg.norm(named.command, axis=-1, keepdims=True)
    assert {tuple(u) for u in unit} == {AXES["+y"], AXES["-x"]}
    assert abs(np.mean(unit[:, 1] > 0) - 0.5) < 0.05
    again = _translate(TranslateConfig(axes="all", min_distance=0.005, max_distance=0.02), n, seed=3)
    np.testing.assert_array_equal(again.command, task.command)  # the seed decides
    other = _translate(TranslateConfig(axes="all", min_distance=0.005, max_distance=0.02), n, seed=4)
    assert not np.allclose(other.command, task.command)


def test_a_translation_episode_starts_with_a_target_offset_from_the_object():
    from dexgen.sim.env import EnvConfig, HandEnv

    env = HandEnv(EnvConfig(num_envs=3, objects="cube_60", task="translate", num_threads=1, seed=2))
    pos, _ = env.object_pose()
    np.testing.assert_allclose(env.task.target - pos, env.task.command)
    np.testing.assert_allclose(env.get_observations()["policy"][:, -3:], env.task.command * OFFSET_OBS_SCALE,
                               rtol=1e-6)  # fmt: skip
    start = env.task.command.copy()
    env.task.draw(np.array([1]), np.random.default_rng(0), pos[1:2])  # on demand: a new offset for one env
    assert np.array_equal(env.task.command[[0, 2]], start[[0, 2]]) and not np.allclose(env.task.command[1], start[1])


@pytest.mark.parametrize(
    ("fields", "words"),
    [({"min_distance": -0.01}, "must be >= 0 (min)"),
     ({"max_distance": 0.0}, "and > 0 (max)"),
     ({"min_distance": 0.03, "max_distance": 0.02}, "min_distance 0.03 exceeds max_distance 0.02"),
     ({"tolerance": 0.0}, "tolerance must be > 0"),
     ({"tolerance": -1.0}, "tolerance must be > 0"),
     ({"tolerance": float("nan")}, "tolerance must be a finite number"),
     ({"progress_clip": 0.0}, "progress_clip must be > 0"),
     ({"axes": "+z"}, "unknown axis '+z'"),
     ({"axes": "+x,up"}, "unknown axis 'up'")],
)  # fmt: skip
def test_a_bad_translation_config_is_refused_in_one_line(fields, words):
    with pytest.raises(ValueError, match=re.escape(words)) as e:
        TranslateConfig(**fields)
    assert "\n" not in str(e.value)


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

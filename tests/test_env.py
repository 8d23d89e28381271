"""Smoke tests: build, reset and step every task on every object shape; shapes, finiteness, determinism."""

import dataclasses

import numpy as np
import pytest

from dexgen.sim.env import EnvConfig, HandEnv
from dexgen.sim.grasps import GraspCacheError
from dexgen.sim.objects import OBJECT_SETS, SHAPE_CODE_DIM, shape_code
from dexgen.sim.randomization import PARAM_NAMES
from dexgen.sim.tasks import TASKS

# one object of every shape (the held-out set adds the ellipsoid)
SHAPE_OBJECTS = ",".join({o.shape: o.name for o in OBJECT_SETS["all"]}.values())


def _rollout(cfg: EnvConfig, steps: int = 6, seed: int = 0):
    env = HandEnv(cfg)
    rng = np.random.default_rng(seed)
    trace = []
    for _ in range(steps):
        obs, reward, done, info = env.step(rng.normal(0, 0.05, (env.num_envs, env.num_actions)))
        trace.append((obs, reward, done, info))
    return env, trace


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_on_every_shape(task):
    cfg = EnvConfig(num_envs=5, task=task, objects=SHAPE_OBJECTS, num_threads=1, history=2)
    env, trace = _rollout(cfg)
    assert len({o.shape for o in env.env_objects}) == 5
    for obs, reward, done, info in trace:
        assert obs["policy"].shape == (5, env.obs_dims["policy"]) and obs["policy"].dtype == np.float32
        assert obs["privileged"].shape == (5, env.obs_dims["privileged"])
        assert reward.shape == done.shape == (5,)
        assert np.isfinite(obs["policy"]).all() and np.isfinite(obs["privileged"]).all() and np.isfinite(reward).all()
        assert set(info["terms"]) == set(env.task.scales)
    # policy observation: per history step q, previous targets, fingertips, command
    assert env.obs_dims["policy"] == 2 * (16 + 16 + 12 + env.task.command_dim)
    assert env.obs_dims["privileged"] == env.obs_dims["policy"] // 2 + 13 + len(PARAM_NAMES)


def test_same_seed_same_trajectory_different_seed_differs():
    cfg = EnvConfig(num_envs=3, objects=SHAPE_OBJECTS, num_threads=1, seed=4)
    _, a = _rollout(cfg)
    _, b = _rollout(EnvConfig(num_envs=3, objects=SHAPE_OBJECTS, num_threads=2, seed=4))
    _, c = _rollout(EnvConfig(num_envs=3, objects=SHAPE_OBJECTS, num_threads=1, seed=5))
    for (oa, ra, *_), (ob, rb, *_) in zip(a, b):
        np.testing.assert_array_equal(oa["privileged"], ob["privileged"])
        np.testing.assert_array_equal(ra, rb)
    assert not np.array_equal(a[-1][0]["privileged"], c[-1][0]["privileged"])


def test_holding_keeps_the_object_and_time_outs_reset():
    cfg = EnvConfig(num_envs=4, objects="cube_60,cylinder_r25_h60", episode_seconds=0.5, num_threads=1)
    env = HandEnv(cfg)
    hold = np.zeros((4, 16))
    for step in range(1, 11):
        before = env.object_pose()
        obs, _, done, info = env.step(hold)
        if step < 10:
            assert not done.any()
    assert done.all() and info["time_outs"].all()
    assert (env.episode_length == 0).all()  # reset inside step
    assert np.isfinite(obs["policy"]).all()
    # last_state is the pose the episode ended in (held still: next to the one before the step), not the reset's
    ended = env.last_state
    assert np.abs(ended.object_pos - before[0]).max() < 2e-3
    assert np.abs(np.abs((ended.object_quat * before[1]).sum(-1)) - 1.0).max() < 1e-3
    assert not np.allclose(ended.object_quat, env.object_pose()[1])


def test_actions_absolute_and_relative():
    env = HandEnv(EnvConfig(num_envs=2, objects="cube_60", action_mode="absolute", num_threads=1))
    target = np.tile(np.linspace(0.0, 0.5, 16), (2, 1))
    env.step(target)
    np.testing.assert_allclose(env.targets, np.clip(target, env.joint_range[:, 0], env.joint_range[:, 1]))
    np.testing.assert_allclose(env.sims.ctrl, env.targets)
    rel = HandEnv(EnvConfig(num_envs=2, objects="cube_60", num_threads=1, action_scale=0.5))
    before = rel.targets.copy()
    rel.step(np.full((2, 16), 0.1))
    np.testing.assert_allclose(rel.targets, np.clip(before + 0.05, rel.joint_range[:, 0], rel.joint_range[:, 1]))


def test_bad_input_is_named(tmp_path):
    env = HandEnv(EnvConfig(num_envs=2, objects="cube_60", num_threads=1))
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 16\)"):
        env.step(np.zeros((2, 15)))
    bad = np.zeros((2, 16))
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(environments \[1\]\)"):
        env.step(bad)
    with pytest.raises(ValueError, match="unknown object 'teapot'"):
        HandEnv(EnvConfig(num_envs=1, objects="teapot"))
    with pytest.raises(ValueError, match="unknown task 'juggle'"):
        HandEnv(EnvConfig(num_envs=1, objects="cube_60", task="juggle"))
    with pytest.raises(GraspCacheError, match="no grasp cache"):
        HandEnv(EnvConfig(num_envs=1, objects="cube_60", grasp_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="action_mode"):
        EnvConfig(action_mode="velocity")


def test_a_diverging_simulation_ends_its_episode():
    env = HandEnv(EnvConfig(num_envs=2, objects="cube_60", num_threads=1))
    env.step(np.zeros((2, 16)))
    env.sims.qvel[1, env.sims.index.object_dof + 3] = 1e12  # makes MuJoCo raise its instability warning
    _, _, done, info = env.step(np.zeros((2, 16)))
    np.testing.assert_array_equal(info["unstable"], [False, True])
    np.testing.assert_array_equal(done, [False, True])
    assert env.episode_length[1] == 0


def test_object_weights_share_the_environments_and_bad_ones_are_named():
    env = HandEnv(EnvConfig(num_envs=12, objects="cube_60,sphere_r30,pen_r6_l140", object_weights="sphere_r30=2"))
    names = [o.name for o in env.env_objects]
    assert names[:4] == ["cube_60", "sphere_r30", "sphere_r30", "pen_r6_l140"]
    assert names.count("sphere_r30") == 6 and names.count("cube_60") == names.count("pen_r6_l140") == 3
    for spec, message in [("sphere_r35=2", "unknown name 'sphere_r35'"), ("sphere_r30=0", "positive integer"),
                          ("sphere_r30=1.5", "positive integer"), ("sphere_r30", "positive integer"),
                          ("sphere_r30=2,sphere_r30=3", "given twice")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            HandEnv(EnvConfig(num_envs=4, objects="cube_60,sphere_r30", object_weights=spec))


def test_shape_obs_appends_each_objects_shape_code_to_the_privileged_observation():
    cfg = EnvConfig(num_envs=5, objects=SHAPE_OBJECTS, num_threads=1, seed=4)
    plain, coded = HandEnv(cfg), HandEnv(dataclasses.replace(cfg, shape_obs=True))
    assert coded.obs_dims == {"policy": plain.obs_dims["policy"],
                              "privileged": plain.obs_dims["privileged"] + SHAPE_CODE_DIM}  # fmt: skip
    actions = np.random.default_rng(0).normal(0, 0.05, (5, 16))
    for env in (plain, coded):
        env.step(actions)
    a, b = plain.get_observations(), coded.get_observations()
    np.testing.assert_array_equal(a["policy"], b["policy"])  # the code changes nothing else
    np.testing.assert_array_equal(a["privileged"], b["privileged"][:, :-SHAPE_CODE_DIM])
    np.testing.assert_allclose(b["privileged"][:, -SHAPE_CODE_DIM:], shape_code(coded.env_objects), rtol=1e-6)


def test_last_state_keeps_the_ended_episodes_final_pose_after_the_reset_it_triggered():
    # the same start and actions; episodes of one step end (and reset) in one environment, not in the other
    cfg = EnvConfig(num_envs=3, objects="cube_60,sphere_r30", seed=5, action_mode="absolute")
    ending, running = HandEnv(dataclasses.replace(cfg, episode_seconds=0.05)), HandEnv(cfg)
    targets = ending.targets.copy()
    _, _, done, _ = ending.step(targets)
    running.step(targets)
    assert done.all()
    state, reference = ending.last_state, running.last_state
    np.testing.assert_array_equal(state.object_pos, reference.object_pos)
    np.testing.assert_array_equal(state.object_quat, reference.object_quat)
    assert not np.allclose(state.object_pos, ending.object_pose()[0])  # the new episodes start elsewhere


def test_an_unknown_wrist_is_named_not_offered_a_grasp_cache_to_generate(capsys):
    from dexgen.cli import main
    from dexgen.sim.grasps import load_grasps

    for make in (lambda: EnvConfig(wrist="bogus"), lambda: load_grasps("cube_60", "bogus")):
        with pytest.raises(ValueError, match="unknown wrist orientation 'bogus'"):
            make()
    assert main(["grasps", "check", "--objects", "cube_60", "--wrist", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'bogus'" in err and "grasps generate" not in err

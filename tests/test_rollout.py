import numpy as np

from dexgen.sim.env import EnvConfig, HandEnv
from dexgen.sim.rollout import Rollout, rollout


def test_holding_a_grasp_with_fixed_targets():
    env = HandEnv(EnvConfig(num_envs=2, objects="cube_60,sphere_r30", episode_seconds=1.0, seed=0))
    seen = []
    r = rollout(env, lambda obs, t: np.zeros((2, 16)), record_tips=True, on_step=seen.append)
    assert seen == list(range(env.max_episode_length))
    assert r.tips.shape == (env.max_episode_length + 1, 2, 4, 3)
    assert r.seconds == env.max_episode_length * env.dt
    np.testing.assert_array_equal(r.hold_s[~r.dropped], r.seconds)
    assert r.rate_about(np.array([0.0, 0.0, 1.0])).shape == (2,)


def test_a_dropped_object_stops_the_clock():
    env = HandEnv(EnvConfig(num_envs=1, objects="cube_60", wrist="palm_down", episode_seconds=3.0,
                            action_mode="absolute", seed=0))  # fmt: skip
    lower = env.joint_range[:, 0][None]
    r = rollout(env, lambda obs, t: lower.copy())  # palm down, hand opened: the cube falls
    assert r.dropped[0]
    assert 0 < r.hold_s[0] < 3.0
    assert r.hold_s[0] == r.hold_steps[0] * env.dt


def test_the_pooled_rate_weights_episodes_by_how_long_they_held():
    z = np.array([0.0, 0.0, 1.0])
    # episode 0 turns at 0.1 rad/s for 100 steps, episode 1 at 1.0 rad/s for 2 steps before it drops
    r = Rollout(dt=0.05, seconds=5.0, hold_steps=np.array([100, 2]), dropped=np.array([False, True]),
                angvel_sum=np.array([[0.0, 0.0, 10.0], [0.0, 0.0, 2.0]]), linvel_sum=np.zeros((2, 3)),
                succeeded=np.zeros(2, bool), tips=None)  # fmt: skip
    np.testing.assert_allclose(r.rate_about(z), [0.1, 1.0])
    assert r.pooled_rate_about(z) == 12.0 / 102
    assert r.pooled_rate_about(-z) == -12.0 / 102

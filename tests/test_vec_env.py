import numpy as np
import torch

from dexgen.rl.vec_env import RslVecEnv
from dexgen.sim.env import EnvConfig, HandEnv


def test_contract_shapes_auto_reset_and_time_outs():
    env = HandEnv(EnvConfig(num_envs=3, objects="cube_60", episode_seconds=0.2, num_threads=1))
    vec = RslVecEnv(env)
    obs = vec.get_observations()
    assert set(obs.keys()) == {"policy", "privileged"}
    assert obs["policy"].shape == (3, env.obs_dims["policy"]) and obs["policy"].dtype == torch.float32
    assert vec.num_envs == 3 and vec.num_actions == 16 and vec.max_episode_length == 4
    for _ in range(4):
        obs, rew, dones, extras = vec.step(torch.zeros(3, 16))
        assert rew.shape == (3,) and rew.dtype == torch.float32 and dones.dtype == torch.bool
        assert "/terms/rotate" in extras["log"]
    assert dones.all() and extras["time_outs"].all()  # the 4th step times out every episode ...
    assert (vec.episode_length_buf == 0).all()  # ... and the env reset them itself
    vec.episode_length_buf = torch.tensor([1, 2, 3])
    np.testing.assert_array_equal(env.episode_length, [1, 2, 3])


def test_a_success_is_not_counted_as_a_drop():
    env = HandEnv(EnvConfig(num_envs=2, objects="cube_60", task="grasp_to_grasp", episode_seconds=1.0, num_threads=1))
    vec = RslVecEnv(env)
    env.task.command[0] = env.sims.hand_q[0]
    env.task.command[1] = env.targets[1] + 1.0  # far from anything reachable in one step
    _, _, dones, extras = vec.step(torch.zeros(2, 16))
    assert dones[0] and not dones[1]  # hand 0 already stands at its target grasp: success ends its episode
    assert not extras["dropped"].any() and extras["log"]["/drop_rate_per_step"] == 0.0
    assert extras["log"]["/terms/success"] == 0.5

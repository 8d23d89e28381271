"""The adapter from HandEnv to rsl-rl's VecEnv contract: tensors in, tensors and a TensorDict out."""

from __future__ import annotations

import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from dexgen.sim.env import HandEnv


class RslVecEnv(VecEnv):
    """Wraps a HandEnv. Observation groups keep their names (``policy``, ``privileged``); ``extras`` carries
    ``time_outs`` and the mean of every unscaled reward term under ``log`` (``/terms/<name>``)."""

    def __init__(self, env: HandEnv, *, device: str = "cpu"):
        self.env = env
        self.num_envs = env.num_envs
        self.num_actions = env.num_actions
        self.max_episode_length = env.max_episode_length
        self.device = device
        self.cfg = {"env": repr(env.config)}

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return torch.from_numpy(self.env.episode_length).to(self.device)

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        # rsl-rl may randomize initial episode lengths; the environment keeps the authoritative counter
        self.env.episode_length[:] = value.cpu().numpy()

    def _obs(self, obs: dict[str, np.ndarray]) -> TensorDict:
        tensors = {k: torch.from_numpy(v).to(self.device) for k, v in obs.items()}
        return TensorDict(tensors, batch_size=[self.num_envs], device=self.device)

    def get_observations(self) -> TensorDict:
        return self._obs(self.env.get_observations())

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        obs, reward, done, info = self.env.step(actions.detach().cpu().numpy().astype(np.float64))
        # an episode that ends before its time-out ends in a drop, unless the task reports success (grasp_to_grasp)
        succeeded = info["terms"]["success"] > 0 if "success" in info["terms"] else np.zeros_like(done)
        dropped = done & ~info["time_outs"] & ~succeeded
        extras = {
            "time_outs": torch.from_numpy(info["time_outs"]).to(self.device),
            "dropped": dropped,
            "log": {f"/terms/{k}": float(np.mean(v)) for k, v in info["terms"].items()},
        }
        extras["log"]["/drop_rate_per_step"] = float(np.mean(dropped))
        return (
            self._obs(obs),
            torch.from_numpy(reward.astype(np.float32)).to(self.device),
            torch.from_numpy(done).to(self.device),
            extras,
        )

"""Running a policy in a ``HandEnv`` for one episode per environment and measuring what happened.

Each environment's first episode counts: it is followed until the object drops (or the simulation goes unstable)
or the horizon ends; later episodes started by the environment's automatic reset are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dexgen.sim.env import HandEnv

Policy = Callable[[dict[str, np.ndarray], int], np.ndarray]
"""(observation groups, control step t) -> (N, 16) actions in the environment's action mode."""


@dataclass
class Rollout:
    """Per-environment results of one episode each (N environments)."""

    dt: float
    """Control period, seconds."""
    seconds: float
    """Horizon, seconds."""
    hold_steps: np.ndarray
    """(N,) control steps the object stayed in hand."""
    dropped: np.ndarray
    """(N,) bool: the object dropped (or the simulation went unstable) before the horizon."""
    angvel_sum: np.ndarray
    """(N, 3) sum over held steps of the object's angular velocity (control-rate finite differences), rad/s."""
    linvel_sum: np.ndarray
    """(N, 3) sum over held steps of the object's linear velocity, m/s."""
    succeeded: np.ndarray
    """(N,) bool: the task reported success while held (grasp_to_grasp)."""
    tips: np.ndarray | None
    """(steps + 1, N, 4, 3) fingertip positions at the start of every step and after the last, metres, palm frame
    (only when recorded); rows after an environment's episode ended belong to later episodes."""
    distance: np.ndarray | None = None
    """(steps, N) the object's distance to its target after each step of the first episode that ended with the
    object in hand (NaN after a drop and after the episode), metres, for a task that reports one as its "distance"
    term (translate); None otherwise."""

    @property
    def hold_s(self) -> np.ndarray:
        """(N,) holding time, seconds, capped at the horizon."""
        return np.where(self.dropped, self.hold_steps * self.dt, self.seconds)

    def rate_about(self, axes: np.ndarray) -> np.ndarray:
        """(N,) mean angular velocity while held about unit axes (N, 3) or (3,), rad/s, signed."""
        return np.sum(self.angvel_sum * axes, axis=-1) / np.maximum(self.hold_steps, 1)

    def pooled_rate_about(self, axes: np.ndarray) -> float:
        """Mean angular velocity about unit axes (N, 3) or (3,) over every held step of every episode, rad/s,
        signed: episodes count by how long they held, so a few short episodes cannot swing it as they do a median
        of per-episode rates."""
        return float(np.sum(self.angvel_sum * axes) / max(int(self.hold_steps.sum()), 1))

    def speed_along(self, axes: np.ndarray) -> np.ndarray:
        """(N,) mean linear velocity while held along unit axes (N, 3) or (3,), m/s, signed."""
        return np.sum(self.linvel_sum * axes, axis=-1) / np.maximum(self.hold_steps, 1)


def rollout(env: HandEnv, policy: Policy, *, steps: int | None = None, record_tips: bool = False,
            on_step: Callable[[int], None] | None = None, progress: str | None = None) -> Rollout:  # fmt: skip
    """Run ``policy`` from the environment's current state for ``steps`` control steps (default: the episode
    length); ``on_step(t)`` is called after each step (for rendering), ``progress`` labels a progress bar."""
    from tqdm import tqdm

    n = env.num_envs
    steps = env.max_episode_length if steps is None else steps
    alive = np.ones(n, dtype=bool)
    hold = np.zeros(n, dtype=np.int64)
    dropped = np.zeros(n, dtype=bool)
    succeeded = np.zeros(n, dtype=bool)
    angvel = np.zeros((n, 3))
    linvel = np.zeros((n, 3))
    tips = np.zeros((steps + 1, n, 4, 3)) if record_tips else None
    distance = None
    obs = env.get_observations()
    for t in tqdm(range(steps), desc=progress, disable=progress is None, leave=False):
        if tips is not None:
            tips[t] = env.fingertips()
        obs, _, done, info = env.step(policy(obs, t))
        s = env.last_state
        angvel += np.where(alive[:, None], s.object_angvel, 0.0)
        linvel += np.where(alive[:, None], s.object_linvel, 0.0)
        hold += alive
        # a drop or an unstable simulation ends the hold; a task that ends on success does not
        lost = alive & done & ~info["time_outs"] & ((info["terms"]["drop"] > 0) | info["unstable"])
        dropped |= lost
        if "distance" in info["terms"]:
            if distance is None:
                distance = np.full((steps, n), np.nan)
            distance[t] = np.where(alive & ~lost, info["terms"]["distance"], np.nan)
        if "success" in info["terms"]:
            succeeded |= alive & (info["terms"]["success"] > 0)
        alive &= ~done
        if on_step is not None:
            on_step(t)
    if tips is not None:
        tips[steps] = env.fingertips()
    return Rollout(dt=env.dt, seconds=steps * env.dt, hold_steps=hold, dropped=dropped, angvel_sum=angvel,
                   linvel_sum=linvel, succeeded=succeeded, tips=tips, distance=distance)  # fmt: skip

"""The batched in-hand manipulation environment.

``HandEnv`` steps N simulations together (on all cores, through ``mujoco.batch``), at a control rate of
1 / (substeps * 5 ms), with joint position targets as actions. Finished episodes are reset inside ``step``; their
new first observation is returned in place of the last one (``info["time_outs"]`` tells truncation from failure).

Observation groups (all palm frame):
  ``policy``: joint positions (16, with noise), previous targets (16), fingertip positions (4x3), task command,
      for each of ``history`` control steps, newest last;
  ``privileged``: the newest policy frame plus object position (3), orientation (4), linear and angular velocity
      (3 + 3) and the physical parameters of the episode (8, see randomization.PARAM_NAMES); with ``shape_obs``
      also the object's shape code (8, see ``shape_code``), last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dexgen.name_values import parse_name_values, positive_int
from dexgen.sim import constants as C
from dexgen.sim.grasps import GraspCache, load_grasps
from dexgen.sim.hand_batch import HandBatch
from dexgen.sim.objects import SHAPE_CODE_DIM, resolve_objects, shape_code
from dexgen.sim.randomization import PARAM_NAMES, DomainRandomizer, RandomizationConfig
from dexgen.sim.rotations import quat_conj, quat_mul, quat_to_rotvec
from dexgen.sim.tasks import StepState, joint_rms, make_task


@dataclass(frozen=True)
class EnvConfig:
    """Configuration of the batched environment."""

    num_envs: int = 64
    """Number of simulations stepped together."""
    task: str = "rotate"
    """Task name: rotate, translate or grasp_to_grasp."""
    objects: str = "train"
    """Object set (train, heldout, all) or comma-separated object names; assigned to environments round-robin."""
    object_weights: str = ""
    """Comma-separated name=share (positive integers) for objects of the set: an object of share k takes k turns in
    the round-robin, so it gets about k times as many environments as one of share 1 (the unnamed ones); a
    curriculum toward the objects that drop most. Empty: equal shares."""
    wrist: str = "palm_up"
    """Wrist orientation: palm_up, palm_down or sideways."""
    substeps: int = 10
    """Physics steps (5 ms each) per control step: 10 gives 20 Hz control."""
    episode_seconds: float = 20.0
    """Episode length before a time-out, seconds."""
    action_mode: str = "relative"
    """'absolute': actions are joint targets, radians; 'relative': actions are target increments."""
    action_scale: float = 1.0
    """Factor on actions before use (radians per unit action)."""
    history: int = 1
    """Control steps of history in the policy observation."""
    num_threads: int = 0
    """Threads stepping the simulations; 0 uses every core. Results do not depend on it."""
    seed: int = 0
    """Seed of every random draw (grasps, commands, randomization, noise)."""
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    """Domain randomization ranges."""
    grasp_dir: str | None = None
    """Directory of the grasp cache; None uses the one shipped in the package."""
    shape_obs: bool = False
    """Append the object's shape code (geom type one-hot and half-extents, see ``shape_code``) to the privileged
    observation: otherwise a policy sees the object's shape only through the grasp."""

    def __post_init__(self) -> None:
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {self.num_envs}")
        if self.substeps < 1:
            raise ValueError(f"substeps must be at least 1, got {self.substeps}")
        if self.history < 1:
            raise ValueError(f"history must be at least 1, got {self.history}")
        if self.action_mode not in ("absolute", "relative"):
            raise ValueError(f"action_mode must be 'absolute' or 'relative', got {self.action_mode!r}")
        if self.episode_seconds <= 0:
            raise ValueError("episode_seconds must be positive")


def parse_object_weights(spec: str, objects) -> dict[str, int]:
    """``EnvConfig.object_weights`` ("name=share,...") as {name: share}, checked against ``objects`` (specs)."""
    return parse_name_values(spec, allowed=[o.name for o in objects], convert=positive_int, what="object weight",
                             form="positive integer")  # fmt: skip


def objects_of_envs(objects, num_envs: int, *, weights: dict[str, int] | None = None) -> tuple:
    """The object of each of ``num_envs`` simulations (``objects`` a sequence, as ``resolve_objects`` returns): they
    take turns, so simulation i holds object i mod len(objects); an object of weight k (default 1) takes k turns
    in a row."""
    weights = weights or {}
    turns = [o for o in objects for _ in range(weights.get(o.name, 1))]
    return tuple(turns[i % len(turns)] for i in range(num_envs))


class HandEnv:
    """N in-hand manipulation environments of one task, stepped together."""

    def __init__(self, config: EnvConfig = EnvConfig(), *, task_config=None):
        self.config = cfg = config
        objects = resolve_objects(cfg.objects)
        weights = parse_object_weights(cfg.object_weights, objects)
        self.env_objects = objects_of_envs(objects, cfg.num_envs, weights=weights)
        root = Path(cfg.grasp_dir) if cfg.grasp_dir else None
        self.grasps: dict[str, GraspCache] = {o.name: load_grasps(o.name, cfg.wrist, root=root) for o in objects}
        self.sims = HandBatch(self.env_objects, wrist=cfg.wrist, num_threads=cfg.num_threads)
        self.task = make_task(cfg.task, cfg.num_envs, task_config)
        self.randomizer = DomainRandomizer(self.sims, cfg.randomization)
        self.rng = np.random.default_rng(cfg.seed)

        self.num_envs = cfg.num_envs
        self.num_actions = C.NUM_JOINTS
        self.dt = cfg.substeps * self.sims.models[0].opt.timestep
        self.max_episode_length = int(round(cfg.episode_seconds / self.dt))
        self.joint_range = self.sims.index.joint_range
        self._frame_dim = 2 * C.NUM_JOINTS + 3 * C.NUM_FINGERTIPS + self.task.command_dim
        self.obs_dims = {
            "policy": self._frame_dim * cfg.history,
            "privileged": self._frame_dim + 13 + len(PARAM_NAMES) + (SHAPE_CODE_DIM if cfg.shape_obs else 0),
        }
        self._shape_code = shape_code(self.env_objects) if cfg.shape_obs else np.zeros((cfg.num_envs, 0))
        n = cfg.num_envs
        self.episode_length = np.zeros(n, dtype=np.int64)
        self.targets = np.zeros((n, C.NUM_JOINTS))
        self.grasp_q = np.zeros((n, C.NUM_JOINTS))
        self._history = np.zeros((n, cfg.history, self._frame_dim))
        self._prev_obj_pos = np.zeros((n, 3))
        self._prev_obj_quat = np.zeros((n, 4))
        self._state: StepState | None = None
        self._warnings_seen = self.sims.warning_counts()
        self.reset()

    # ---- episodes -----------------------------------------------------------------------------------------------
    def sample_grasp_q(self, ids: np.ndarray, rng: np.random.Generator, *, away_from: np.ndarray | None = None,
                       min_distance: float = 0.0) -> np.ndarray:  # fmt: skip
        """(n, 16) joint positions of random cached grasps of each environment's object, radians. With
        ``away_from`` ((n, 16) joint positions), only grasps at least ``min_distance`` from it (RMS over joints,
        radians) are drawn; where the object has none, its farthest grasp."""
        out = np.empty((len(ids), C.NUM_JOINTS))
        for k, i in enumerate(ids):
            q = self.grasps[self.env_objects[i].name].hand_q
            if away_from is None:
                out[k] = q[rng.integers(len(q))]
                continue
            dist = joint_rms(q, away_from[k])
            far = np.flatnonzero(dist >= min_distance)
            out[k] = q[rng.choice(far)] if len(far) else q[np.argmax(dist)]
        return out

    def reset(self, ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Start new episodes in environments ``ids`` (all by default) from random cached grasps."""
        ids = np.arange(self.num_envs) if ids is None else np.asarray(ids, dtype=np.int64)
        self._reset_ids(ids)
        return self.get_observations()

    def _reset_ids(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        picks = {k: [] for k in ("hand_q", "targets", "object_pos", "object_quat")}
        for i in ids:
            cache = self.grasps[self.env_objects[i].name]
            g = self.rng.integers(len(cache))
            for k, v in picks.items():
                v.append(getattr(cache, k)[g])
        picks = {k: np.array(v) for k, v in picks.items()}
        self.randomizer.randomize(ids, self.rng)
        self.sims.set_state(ids, **picks)
        self.targets[ids] = picks["targets"]
        self.grasp_q[ids] = picks["hand_q"]
        self.episode_length[ids] = 0
        pos, quat = self.sims.object_pose()
        self._prev_obj_pos[ids] = pos[ids]
        self._prev_obj_quat[ids] = quat[ids]
        self.task.reset(ids, self.rng, self)
        frame = self._policy_frame(ids)
        self._history[ids] = frame[:, None, :]

    # ---- stepping -----------------------------------------------------------------------------------------------
    def _check_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"actions must have shape ({self.num_envs}, {self.num_actions}), got {actions.shape}")
        if not np.isfinite(actions).all():
            bad = np.flatnonzero(~np.isfinite(actions).all(axis=1))
            raise ValueError(f"actions hold NaN or inf (environments {bad[:5].tolist()})")
        return actions

    def step(self, actions: np.ndarray):
        """Apply (N, 16) actions for one control step.

        Returns:
            obs: dict of observation groups (see module docstring), after automatic resets.
            reward: (N,) scaled and summed reward terms.
            done: (N,) bool, episode ended (dropped, task end, or time-out); those environments were reset.
            info: {"terms": unscaled terms (N,) each, "time_outs": (N,) bool, "unstable": (N,) bool (MuJoCo
                reset a diverging simulation; the episode ends), "episode_length": (N,) steps before any reset}.
        """
        actions = self._check_actions(actions) * self.config.action_scale
        if self.config.action_mode == "relative":
            actions = self.targets + actions
        self.targets = np.clip(actions, self.joint_range[:, 0], self.joint_range[:, 1])
        self.sims.ctrl[:] = self.targets
        self.sims.step(self.config.substeps)
        self.episode_length += 1

        # MuJoCo resets a simulation that went unstable; its state is then meaningless, so end the episode.
        warnings = self.sims.warning_counts()
        unstable = warnings > self._warnings_seen
        self._warnings_seen = warnings

        s = self._step_state()
        terms, terminated = self.task.compute(s)
        terminated = terminated | unstable
        scales = self.task.scales
        reward = np.zeros(self.num_envs)
        for k, v in terms.items():
            reward += scales.get(k, 0.0) * v
        time_outs = (self.episode_length >= self.max_episode_length) & ~terminated
        done = terminated | time_outs
        info = {
            "terms": terms,
            "time_outs": time_outs,
            "unstable": unstable,
            "episode_length": self.episode_length.copy(),
        }

        frame = self._policy_frame(None)
        self._history[:, :-1] = self._history[:, 1:]
        self._history[:, -1] = frame
        self._reset_ids(np.flatnonzero(done))
        return self.get_observations(), reward, done, info

    def _step_state(self) -> StepState:
        pos, quat = self.sims.object_pose()
        # velocities at control rate: finite differences over the control step, not the instantaneous qvel
        linvel = (pos - self._prev_obj_pos) / self.dt
        angvel = quat_to_rotvec(quat_mul(quat, quat_conj(self._prev_obj_quat))) / self.dt
        self._prev_obj_pos, self._prev_obj_quat = pos, quat
        self._state = StepState(
            q=self.sims.hand_q,
            qd=self.sims.hand_qd,
            torque=self.sims.actuator_force.copy(),
            targets=self.targets.copy(),
            object_pos=pos.copy(),  # copies: a reset rewrites the previous-pose buffers in place
            object_quat=quat.copy(),
            object_linvel=linvel,
            object_angvel=angvel,
            grasp_q=self.grasp_q.copy(),
        )
        return self._state

    # ---- observations -------------------------------------------------------------------------------------------
    def _policy_frame(self, ids: np.ndarray | None) -> np.ndarray:
        sel = slice(None) if ids is None else ids
        q = self.sims.hand_q[sel]
        q = q + self.randomizer.joint_noise(self.rng, q.shape)
        tips = self.sims.fingertips()[sel].reshape(len(q), -1)
        return np.concatenate((q, self.targets[sel], tips, self.task.observation()[sel]), axis=-1)

    def get_observations(self) -> dict[str, np.ndarray]:
        """Observation groups for every environment, (N, dim) float32 each (see module docstring)."""
        pos, quat = self.sims.object_pose()
        linvel, angvel = self.sims.object_velocity()
        policy = self._history.reshape(self.num_envs, -1)
        privileged = np.concatenate(
            (self._history[:, -1], pos, quat, linvel, angvel, self.randomizer.params, self._shape_code), axis=-1
        )
        return {"policy": policy.astype(np.float32), "privileged": privileged.astype(np.float32)}

    # ---- inspection ---------------------------------------------------------------------------------------------
    @property
    def last_state(self) -> StepState | None:
        """The StepState of the last control step (before any reset it triggered), or None before the first."""
        return self._state

    def fingertips(self) -> np.ndarray:
        """(N, 4, 3) fingertip positions, metres, palm frame."""
        return self.sims.fingertips()

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Object position (N, 3), metres, and orientation (N, 4), palm frame."""
        return self.sims.object_pose()

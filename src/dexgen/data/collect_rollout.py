"""The worker side of a collection (``dexgen.data.collect``): a ``Rollout`` steps one ``HandEnv`` of one wrist
orientation, switching each simulation's primitive at random moments, acting with the current primitive's expert
plus exploration noise, and returning the episodes that ended; ``make_rollouts`` builds a worker's rollouts."""

from __future__ import annotations

import numpy as np

from dexgen.data.collect_experts import CollectError
from dexgen.data.schema import CONTROL_HZ, PARAM_DIM, PRIMITIVES, STEP_FIELDS, axis_vector, row_dtype
from dexgen.sim.constants import DEFAULT_HAND
from dexgen.sim.objects import SHAPE_CODE_DIM
from dexgen.sim.tasks import GraspToGraspConfig, joint_rms, offset_observation, planar_offsets

G2G_SUCCESS_RMS = GraspToGraspConfig.success_tolerance
"""A grasp_to_grasp target counts as reached (and a new one is drawn) below this RMS joint error, radians (the
task's success tolerance, as in training)."""

G2G_MIN_TARGET_DISTANCE = GraspToGraspConfig.min_target_distance
"""A new grasp_to_grasp target is drawn at least this far from the hand, RMS over joints, radians (as in training)."""


class Rollout:
    """One ``HandEnv`` of one wrist orientation, with each simulation's current primitive, command and episode
    buffer. ``step()`` advances every simulation by one control step and returns the episodes that ended."""

    def __init__(self, env, wrist: str, primitives: list[dict], actors: list, *, rng: np.random.Generator,
                 episode_steps: int, noise_std: float, switch_prob: float,
                 shape_obs: list[bool] | None = None):  # fmt: skip
        self.env, self.wrist, self.actors, self.rng = env, wrist, actors, rng
        # experts trained without the shape code get the privileged observation without it (it comes last)
        extra = SHAPE_CODE_DIM if env.config.shape_obs else 0
        self.drop_shape = [extra if not s else 0 for s in (shape_obs or [False] * len(actors))]
        self.noise_std, self.switch_prob = noise_std, switch_prob
        n, self.n = env.num_envs, env.num_envs
        self.episode_steps = episode_steps
        self.base_dim = env.obs_dims["policy"] - env.task.command_dim  # the frame's command comes last
        self.prim_id = np.array([p["id"] for p in primitives], dtype=np.int8)
        self.prim_expert = np.array([p["expert"] for p in primitives])
        self.prim_scale = np.array([p["action_scale"] for p in primitives])
        self.prim_g2g = np.array([PRIMITIVES[p["id"]] == "grasp_to_grasp" for p in primitives])
        weight = np.array([p.get("weight", 1.0) for p in primitives], dtype=float)
        # equal weights draw as before weights existed, so a seed still gives the same file as then
        self.prim_weight = None if np.all(weight == weight[0]) else weight
        self.prim_axis = np.zeros((len(primitives), 3))
        for j, p in enumerate(primitives):
            if not self.prim_g2g[j]:
                self.prim_axis[j] = axis_vector(PRIMITIVES[p["id"]][-2:])
        self.prim_translate = np.array([PRIMITIVES[p["id"]].startswith("translate") for p in primitives])
        self.prim_offsets = [p.get("offsets") for p in primitives]
        self.target = np.zeros((n, 3))
        """(n, 3) where a translating simulation is to move its object, metres, palm frame."""
        self.expert_dims = {p["expert"]: p["command_dim"] for p in primitives}
        self.rows = np.arange(n)
        self.current = np.zeros(n, dtype=np.int64)
        self.command = np.zeros((n, PARAM_DIM))
        self.length = np.zeros(n, dtype=np.int64)
        # each simulation's first episode ends after a random part of a full one, so episodes finish steadily
        self.limit = rng.integers(1, episode_steps + 1, size=n)
        self.buffers = {k: np.zeros((n, episode_steps, *f.shape), dtype=row_dtype(f)) for k, f in STEP_FIELDS.items()}
        self.names = [o.name for o in env.env_objects]
        self.gravity_dir = env.sims.gravity_dir
        self._assign(self.rows, switch=False)
        self.obs = env.get_observations()

    def _assign(self, ids: np.ndarray, *, switch: bool) -> None:
        """Give simulations ``ids`` a random primitive (another than their current one when switching)."""
        p = len(self.prim_id)
        if self.prim_weight is not None:
            w = np.broadcast_to(self.prim_weight, (len(ids), p)).copy()
            if switch:
                w[np.arange(len(ids)), self.current[ids]] = 0.0
            cum = np.cumsum(w, axis=1)
            u = self.rng.random(len(ids)) * cum[:, -1]
            new = np.minimum((cum <= u[:, None]).sum(axis=1), p - 1)
        elif switch:
            new = (self.current[ids] + self.rng.integers(1, p, size=len(ids))) % p
        else:
            new = self.rng.integers(p, size=len(ids))
        self.current[ids] = new
        self.command[ids] = 0.0
        self.command[ids, :3] = self.prim_axis[new]
        self._new_targets(ids[self.prim_g2g[new]])
        self._new_offsets(ids[self.prim_translate[new]])

    def _new_offsets(self, ids: np.ndarray) -> None:
        """New translation commands for simulations ``ids``: offsets drawn about their primitive's axis (as the
        primitive's ``offsets`` say) from where their objects are now; the offset is the command recorded."""
        if len(ids) == 0:
            return
        pos, _ = self.env.object_pose()
        for j in np.unique(self.current[ids]):
            sel = ids[self.current[ids] == j]
            o = self.prim_offsets[j]
            offsets = planar_offsets(self.rng, np.broadcast_to(self.prim_axis[j], (len(sel), 3)), spread=o["spread"],
                                     min_distance=o["min_distance"], max_distance=o["max_distance"])  # fmt: skip
            self.command[sel, :3] = offsets
            self.target[sel] = pos[sel] + offsets

    def _new_targets(self, ids: np.ndarray) -> None:
        if len(ids):
            self.command[ids] = self.env.sample_grasp_q(ids, self.rng, away_from=self.env.sims.hand_q[ids],
                                                        min_distance=G2G_MIN_TARGET_DISTANCE)  # fmt: skip

    def _actions(self) -> np.ndarray:
        """Each simulation's expert action from the current observation with its current command (a translation
        expert sees the displacement that remains to its target, as in training)."""
        policy, privileged = self.obs["policy"], self.obs["privileged"]  # history 1: policy is one frame
        command = self.command
        moving = np.flatnonzero(self.prim_translate[self.current])
        if len(moving):
            command = command.copy()
            command[moving, :3] = offset_observation(self.target[moving], self.env.object_pose()[0][moving])
        base, tail = policy[:, : self.base_dim], privileged[:, policy.shape[1] :]
        experts = self.prim_expert[self.current]
        actions = np.zeros((self.n, 16))
        for e, k in self.expert_dims.items():
            ids = np.flatnonzero(experts == e)
            if len(ids) == 0:
                continue
            pol = np.concatenate((base[ids], command[ids, :k].astype(np.float32)), axis=1)
            priv = np.concatenate((pol, tail[ids, : tail.shape[1] - self.drop_shape[e]]), axis=1)
            actions[ids] = self.actors[e].act({"policy": pol, "privileged": priv})
        if self.noise_std > 0:
            actions += self.noise_std * self.rng.standard_normal(actions.shape)
        return actions

    def step(self) -> list[tuple[dict[str, np.ndarray], str, str]]:
        env, rng, rows = self.env, self.rng, self.rows
        if self.switch_prob > 0 and len(self.prim_id) > 1:
            switching = np.flatnonzero((rng.random(self.n) < self.switch_prob) & (self.length > 0))
            if len(switching):
                self._assign(switching, switch=True)
        g2g = np.flatnonzero(self.prim_g2g[self.current])
        if len(g2g):
            rms = joint_rms(env.sims.hand_q[g2g], self.command[g2g])
            self._new_targets(g2g[rms < G2G_SUCCESS_RMS])
        env.task.command[:] = self.prim_axis[self.current]  # the rotate task's command slot (zero for grasp_to_grasp)
        actions = self._actions()

        t, b = self.length, self.buffers
        b["joint_pos"][rows, t] = env.sims.hand_q
        b["joint_target"][rows, t] = env.targets
        b["action"][rows, t] = actions
        b["fingertip_pos"][rows, t] = env.fingertips()
        b["primitive_id"][rows, t] = self.prim_id[self.current]
        b["primitive_param"][rows, t] = self.command
        pos, quat = env.object_pose()
        linvel, angvel = env.sims.object_velocity()
        b["object_pos"][rows, t], b["object_quat"][rows, t] = pos, quat
        b["object_linvel"][rows, t], b["object_angvel"][rows, t] = linvel, angvel

        b["gravity_dir"][rows, t] = self.gravity_dir

        self.obs, _, done, info = env.step(actions * self.prim_scale[self.current][:, None])
        dropped = done & (info["terms"]["drop"] > 0) & ~info["unstable"]
        b["dropped"][rows, t] = dropped
        state = env.last_state  # the object's motion over this step, computed before any reset
        b["realized_angvel"][rows, t], b["realized_linvel"][rows, t] = state.object_angvel, state.object_linvel
        self.length += 1
        timed_out = ~done & (self.length >= self.limit)
        ended = np.flatnonzero(done | timed_out)
        episodes = [({k: v[i, : self.length[i]].copy() for k, v in b.items()}, self.names[i], self.wrist)
                    for i in ended]  # fmt: skip
        if timed_out.any():  # the env resets dropped ones itself, inside step
            self.obs = env.reset(np.flatnonzero(timed_out))
        if len(ended):
            self.length[ended] = 0
            self.limit[ended] = self.episode_steps
            self._assign(ended, switch=False)
        return episodes

    def flush(self) -> list[tuple[dict[str, np.ndarray], str, str]]:
        """End every open episode here, as a time-out, and return them (used when the worker has stepped its share
        of the collection, so that no stepped transition is thrown away)."""
        b, open_ = self.buffers, np.flatnonzero(self.length > 0)
        episodes = [({k: v[i, : self.length[i]].copy() for k, v in b.items()}, self.names[i], self.wrist)
                    for i in open_]  # fmt: skip
        self.length[open_] = 0
        return episodes


def step_worker(rollouts: list[Rollout], *, stepped: int, quota: int) -> tuple[list, int, bool]:
    """Step each of a worker's rollouts one control step. ``stepped`` counts the transitions the worker has stepped
    so far; once it reaches ``quota`` (the worker's share of the collection), every open episode is ended too
    (``Rollout.flush``) and the worker is done. Returns the episodes that ended, in order, the new count and whether
    the worker is done."""
    episodes = []
    for rollout in rollouts:
        episodes += rollout.step()
        stepped += rollout.n
    if stepped < quota:
        return episodes, stepped, False
    for rollout in rollouts:
        episodes += rollout.flush()
    return episodes, stepped, True


def make_rollouts(spec: dict, seed_seq: np.random.SeedSequence, index: int = 0) -> list[Rollout]:
    """Worker ``index``'s rollouts (one per wrist), seeded from ``seed_seq``. Objects go round-robin over all
    simulations of all workers and wrists, so that every object is used even when a worker has few simulations."""
    from dexgen.rl.numpy_actor import NumpyActor
    from dexgen.sim.env import EnvConfig, HandEnv
    from dexgen.sim.objects import resolve_objects
    from dexgen.sim.tasks import RotateConfig

    actors = None
    wrists = spec["wrists"]
    sizes = [spec["envs"] // len(wrists) + (1 if j < spec["envs"] % len(wrists) else 0) for j in range(len(wrists))]
    names = [o.name for o in resolve_objects(spec["objects"])]
    rollouts, first = [], index * spec["envs"]
    shape_obs = [e.get("shape_obs", False) for e in spec["experts"]]
    for wrist, n, ss in zip(wrists, sizes, seed_seq.spawn(len(wrists))):
        env_ss, own_ss = ss.spawn(2)
        objects = ",".join(names[(first + i) % len(names)] for i in range(min(n, len(names))))
        first += n
        env = HandEnv(
            EnvConfig(num_envs=n, task="rotate", objects=objects, wrist=wrist, action_mode="relative",
                      shape_obs=any(shape_obs), action_scale=1.0, episode_seconds=spec["episode_seconds"] + 1.0,
                      num_threads=1, grasp_dir=spec.get("grasp_dir"), hand=spec.get("hand", DEFAULT_HAND),
                      seed=int(env_ss.generate_state(1, dtype=np.uint64)[0])),
            task_config=RotateConfig(axes="all"),
        )  # fmt: skip
        if abs(env.dt * CONTROL_HZ - 1.0) > 1e-9:
            raise CollectError(f"the environment's control step is {env.dt} s, the dataset's {1.0 / CONTROL_HZ} s")
        for e, shape in zip(spec["experts"], shape_obs):  # each expert's training layout: history 1, its command
            k = e["command_dim"] - env.task.command_dim
            drop = SHAPE_CODE_DIM if any(shape_obs) and not shape else 0
            expected = {"policy": env.obs_dims["policy"] + k, "privileged": env.obs_dims["privileged"] + k - drop}
            if e["obs_dims"] != expected:
                raise CollectError(f"expert {e['path']} expects observations {e['obs_dims']}; the collector gives "
                                   f"{expected} (history 1, {e['command_dim']}-value command)")  # fmt: skip
        if actors is None:  # loaded once the layouts are known to fit (else a weight mismatch would hide that)
            actors = [NumpyActor.load(e["path"]) for e in spec["experts"]]
        steps = max(1, int(round(spec["episode_seconds"] / env.dt)))
        rollouts.append(Rollout(env, wrist, spec["primitives"][wrist], actors, rng=np.random.default_rng(own_ss),
                                episode_steps=steps, noise_std=spec["action_noise_std"],
                                switch_prob=-np.expm1(-spec["switch_prob_per_s"] * env.dt),
                                shape_obs=shape_obs))  # fmt: skip
    return rollouts

"""``dexgen collect``: roll out the RL experts in the batched simulator and write their motion to a dataset.

Worker processes (``multiprocessing``, forkserver start) each step their own ``HandEnv`` per wrist orientation
(one simulation thread each). Every simulation carries out one primitive at a time (rotate about a signed palm axis,
translate along one, or grasp_to_grasp toward a target finger configuration); at random moments (``switch_prob_per_s``)
it switches to another primitive within the same episode, so the data covers the transitions between motions. The
expert of the current primitive acts, Gaussian exploration noise is added to its action, and the environment applies
the noisy action with the expert's action scale. An episode ends when the object drops (its last step, with
``dropped`` set, is kept) or at a time-out; the worker then sends it to the parent process, the only writer, which
commits it with ``EpisodeWriter.append_episode``. So the file only ever shows complete episodes, and a collection
killed at any moment and restarted with ``resume`` loses no committed episode: a resumed round seeds its workers
with the number of episodes already in the file, so it draws new episodes rather than the lost round's again.
Each worker steps an equal share of the transitions still needed, then ends its open episodes there (as time-outs)
and stops: so a collection steps about as many transitions as it writes, instead of throwing away the half-finished
episodes of every simulation at the end (about half an episode per simulation, a large share of a small run).

With ``backend="ray"`` the same workers (the same rollouts, seeded the same way) run as Ray actors
(``CollectWorker``) on a local Ray instance or a cluster; each call steps a worker's rollouts ``RAY_CHUNK_STEPS``
control steps and returns the episodes that ended, and the parent, which keeps one call in flight per actor, commits
them exactly as it commits a local worker's. Episodes are committed one from each worker in turn, so a seed and a
worker count give the same file on either backend, however the workers are scheduled.

Commands and observations: the environment runs the ``rotate`` task, whose 3-value command slot carries the axis of
the current primitive (``env.task.command``, written before every step). The collector does not rely on the
observation the environment cached at the end of the previous step (its command slice is stale after a switch, and
a grasp_to_grasp expert needs 16 values there): for each expert it re-derives the observation from the cached one's
command-free part (noisy joint positions, previous targets, fingertips) and tail (object state and physical
parameters), with the current command of each simulation in between, in the layout of the environment the expert was
trained in (history 1). All simulations that use one expert are batched into one forward pass.

Rows follow ``dexgen.data.schema``: each is the state at the start of a control step (true joint positions), the
targets then in force, and the raw (noisy, unscaled) action computed from it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue as queue_mod
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dexgen.data.schema import (
    CONTROL_HZ,
    PARAM_DIM,
    PRIMITIVES,
    ROTATE_AXES,
    STEP_FIELDS,
    TRANSLATE_AXES,
    axis_vector,
    primitive_name,
    row_dtype,
)
from dexgen.name_values import non_negative_float, parse_name_values
from dexgen.provenance import command_line
from dexgen.sim.constants import DEFAULT_HAND, DEFAULT_WRIST
from dexgen.sim.objects import SHAPE_CODE_DIM
from dexgen.sim.tasks import GraspToGraspConfig, joint_rms

COMMAND_DIMS = {"rotate": 3, "translate": 3, "grasp_to_grasp": 16}
"""Length of each task's command in the expert's observation."""

G2G_SUCCESS_RMS = GraspToGraspConfig.success_tolerance
"""A grasp_to_grasp target counts as reached (and a new one is drawn) below this RMS joint error, radians (the
task's success tolerance, as in training)."""

G2G_MIN_TARGET_DISTANCE = GraspToGraspConfig.min_target_distance
"""A new grasp_to_grasp target is drawn at least this far from the hand, RMS over joints, radians (as in training)."""

QUEUE_SIZE = 256
"""Finished episodes that may wait in the queue between the workers and the writer."""

FORKSERVER_PRELOAD = ["dexgen.data.collect", "dexgen.sim.env", "dexgen.rl.numpy_actor"]
"""Modules the fork server imports once, so that workers start without importing MuJoCo and the simulator again
(the experts act through numpy, so no worker imports torch)."""


BACKENDS = ("local", "ray")
"""Where the workers run: local processes (``multiprocessing``) or Ray actors."""

RAY_CHUNK_STEPS = 4
"""Control steps a Ray worker takes per call (every simulation of every wrist steps this many times) before it
returns the episodes that ended."""

RAY_NEEDED = "the ray backend needs Ray: pip install 'dexgen[ray]'"
"""The error when --backend ray is asked for and Ray is not installed."""


class CollectError(ValueError):
    """A collection that cannot start or whose worker failed; the message is one line."""


@dataclass
class CollectConfig:
    """Collect a motion dataset: roll out the RL experts over primitives, objects, wrists and randomized physics."""

    out: str
    """Dataset file to write (.h5); with --resume, the file to continue."""
    transitions: int
    """Stop once the file holds at least this many transitions (control steps at 20 Hz)."""
    workers: int = 0
    """Worker processes, each stepping its own simulations on one core; 0 uses every core."""
    envs_per_worker: int = 64
    """Simulations per worker (split evenly among the wrist orientations)."""
    seed: int = 0
    """Seed; each worker's is derived from it, the worker's index and the number of episodes already in the file."""
    resume: bool = False
    """Continue an existing file (after an interruption, or to make it larger) until it holds --transitions."""
    experts: str | None = None
    """Comma-separated expert weights (.safetensors, each with its .json record beside it); default: every expert
    shipped in dexgen/rl/experts."""
    objects: str = "train"
    """Object set (train, heldout, all) or comma-separated object names, assigned to simulations round-robin."""
    grasp_dir: str | None = None
    """Directory of the grasp caches that episodes start from (DIR/<wrist>/<object>.npz; grasp_to_grasp targets are
    drawn from them too); None: the shipped caches. ``dexgen reached-states`` writes the states the guided
    controller reaches in this form, so the experts show what to do there (data aggregation)."""
    wrists: str = "palm_up"
    """Comma-separated wrist orientations (palm_up, palm_down, sideways); every worker simulates each of them."""
    episode_seconds: float = 10.0
    """Episode length before a time-out, seconds (each simulation's first episode ends after a random part of it,
    so that episodes finish at a steady rate); an episode also ends when the object drops."""
    action_noise_std: float = 0.1
    """Standard deviation of the Gaussian exploration noise added to the expert's action, in action units (the
    action is then scaled by the expert's action scale, radians of target change per unit)."""
    switch_prob_per_s: float = 0.2
    """Rate of random switches to another primitive within an episode, per second (0: one primitive per episode)."""
    primitive_weights: str = ""
    """Comma-separated name=weight pairs (e.g. grasp_to_grasp=0.25): a primitive's relative chance of being drawn at
    an episode's start and at a switch; unnamed primitives weigh 1, and weight 0 leaves a primitive out."""
    backend: str = "local"
    """Where the workers run: local (worker processes on this machine) or ray (Ray actors, on a local Ray instance
    or the cluster at --ray-address; needs the dexgen[ray] extra)."""
    ray_address: str | None = None
    """With --backend ray: None starts a local Ray instance with num_cpus = the worker count; otherwise connect to
    this cluster address, e.g. 'auto' (then --workers 0 uses every CPU of the cluster)."""
    json: bool = False
    """Print one JSON object instead of a table (and no progress bar)."""

    def __post_init__(self) -> None:
        from dexgen.sim.hand import WRIST_QUATS

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise CollectError(message)

        need(self.backend in BACKENDS, f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        need(self.backend == "ray" or self.ray_address is None, "--ray-address needs --backend ray")
        need(self.transitions >= 1, f"--transitions must be at least 1, got {self.transitions}")
        need(self.workers >= 0 and self.envs_per_worker >= 1, "--workers must be >= 0 and --envs-per-worker >= 1")
        need(np.isfinite(self.episode_seconds) and self.episode_seconds >= 1.0 / CONTROL_HZ,
             f"--episode-seconds must be finite and at least one control step ({1.0 / CONTROL_HZ} s), got "
             f"{self.episode_seconds}")  # fmt: skip
        need(self.seed >= 0, f"--seed must be non-negative, got {self.seed}")
        need(all(np.isfinite(v) and v >= 0 for v in (self.action_noise_std, self.switch_prob_per_s)),
             "--action-noise-std and --switch-prob-per-s must be finite and non-negative")  # fmt: skip
        wrists = [w.strip() for w in self.wrists.split(",") if w.strip()]
        need(bool(wrists), "--wrists names no wrist orientation")
        for w in wrists:
            need(w in WRIST_QUATS, f"unknown wrist orientation {w!r}; expected one of {', '.join(WRIST_QUATS)}")
        need(self.envs_per_worker >= len(wrists),
             f"--envs-per-worker ({self.envs_per_worker}) must be at least the number of wrists")  # fmt: skip


# ---- experts and primitives (parent side: JSON records only, no torch) ---------------------------------------------
def _default_expert_dir() -> Path:
    """``dexgen.rl.expert.EXPERT_DIR``, found without importing torch when that module is not loaded yet."""
    import importlib.util
    import sys

    module = sys.modules.get("dexgen.rl.expert")
    if module is not None:
        return Path(module.EXPERT_DIR)
    spec = importlib.util.find_spec("dexgen.rl")
    return Path(list(spec.submodule_search_locations)[0]) / "experts"


def _expert_axes(task: str, axis: str) -> tuple[str, ...]:
    if task == "grasp_to_grasp":
        return ("",)
    allowed = ROTATE_AXES if task == "rotate" else TRANSLATE_AXES
    return allowed if axis == "all" else tuple(a.strip() for a in axis.split(","))


def _read_expert(path: Path) -> dict:
    """What the collector needs of an expert, from its JSON record (the workers load the weights again to act)."""
    from dexgen.rl.expert_files import ExpertError, read_expert_files

    try:
        record, _ = read_expert_files(path)
    except ExpertError as e:
        raise CollectError(str(e)) from None
    record_path = path.with_suffix(".json")
    try:
        task, axis, obs_dims = record["task"], record["axis"], record["obs_dims"]
        scale = float(record["env"]["action_scale"])
    except (KeyError, TypeError, ValueError) as e:
        raise CollectError(f"expert record {record_path} is incomplete: {e!r}") from None
    if task not in COMMAND_DIMS:
        raise CollectError(f"expert {path}: unknown task {task!r}")
    if not isinstance(obs_dims, dict) or set(obs_dims) != {"policy", "privileged"}:
        raise CollectError(f"expert record {record_path}: obs_dims must give the policy and privileged sizes")
    try:
        names = [primitive_name(task, a) for a in _expert_axes(task, axis)]
    except ValueError as e:
        raise CollectError(f"expert {path}: {e}") from None
    wrist = record["env"].get("wrist", DEFAULT_WRIST)
    hand = record["env"].get("hand", DEFAULT_HAND)  # records from before the hand was recorded: the default hand
    return {"path": str(path), "task": task, "axis": axis, "wrist": wrist, "hand": hand, "primitives": names,
            "command_dim": COMMAND_DIMS[task], "obs_dims": obs_dims, "action_scale": scale,
            "shape_obs": bool(record["env"].get("shape_obs", False)),
            "revision": record.get("revision", "unknown")}  # fmt: skip


def resolve_experts(spec: str | None) -> list[dict]:
    """The experts to roll out: those named in ``spec`` (comma-separated .safetensors paths) or, if None, every
    shipped one; a one-line CollectError if there are none or one is unusable."""
    if spec is None:
        directory = _default_expert_dir()
        paths = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
        if not paths:
            raise CollectError(f"no shipped experts in {directory}: ship some (dexgen export-expert RUN_DIR --ship) "
                               f"or name them with --experts PATH[,PATH...]")  # fmt: skip
    else:
        paths = [Path(p.strip()) for p in spec.split(",") if p.strip()]
        if not paths:
            raise CollectError("--experts names no file")
    return [_read_expert(p) for p in paths]


def parse_primitive_weights(spec: str) -> dict[str, float]:
    """``--primitive-weights`` as ``{primitive: weight}``; a one-line CollectError for a bad entry."""
    try:
        return parse_name_values(spec, allowed=PRIMITIVES, convert=non_negative_float, what="primitive weight",
                                 form="non-negative number")  # fmt: skip
    except ValueError as e:
        raise CollectError(str(e)) from None


def primitive_table(experts: list[dict], wrist: str | None = None, *,
                    weights: dict[str, float] | None = None) -> list[dict]:  # fmt: skip
    """One entry per primitive available in wrist orientation ``wrist`` (None: any), in ``PRIMITIVES`` order: name,
    id, expert index, command dim, action scale, weight (``weights``, default 1; weight 0 leaves it out). Only
    experts trained in that orientation act in it. Where several experts cover a primitive, the one covering fewest
    primitives (the most specialized) acts, the first named among equals."""
    weights = weights or {}
    best: dict[str, int] = {}
    for e, ex in enumerate(experts):
        if wrist is not None and ex["wrist"] != wrist:
            continue
        for name in ex["primitives"]:
            if name not in best or len(ex["primitives"]) < len(experts[best[name]]["primitives"]):
                best[name] = e
    return [{"name": name, "id": PRIMITIVES.index(name), "expert": best[name],
             "command_dim": experts[best[name]]["command_dim"], "action_scale": experts[best[name]]["action_scale"],
             "weight": weights.get(name, 1.0)}
            for name in PRIMITIVES if name in best and weights.get(name, 1.0) > 0]  # fmt: skip


# ---- worker side ----------------------------------------------------------------------------------------------------
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
        self.expert_dims = {p["expert"]: p["command_dim"] for p in primitives}
        self.rows = np.arange(n)
        self.current = np.zeros(n, dtype=np.int64)
        self.command = np.zeros((n, PARAM_DIM))
        self.length = np.zeros(n, dtype=np.int64)
        # each simulation's first episode ends after a random part of a full one, so episodes finish steadily
        self.limit = rng.integers(1, episode_steps + 1, size=n)
        self.buffers = {k: np.zeros((n, episode_steps, *f.shape), dtype=row_dtype(f)) for k, f in STEP_FIELDS.items()}
        self.names = [o.name for o in env.env_objects]
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

    def _new_targets(self, ids: np.ndarray) -> None:
        if len(ids):
            self.command[ids] = self.env.sample_grasp_q(ids, self.rng, away_from=self.env.sims.hand_q[ids],
                                                        min_distance=G2G_MIN_TARGET_DISTANCE)  # fmt: skip

    def _actions(self) -> np.ndarray:
        """Each simulation's expert action from the current observation with its current command."""
        policy, privileged = self.obs["policy"], self.obs["privileged"]  # history 1: policy is one frame
        base, tail = policy[:, : self.base_dim], privileged[:, policy.shape[1] :]
        experts = self.prim_expert[self.current]
        actions = np.zeros((self.n, 16))
        for e, k in self.expert_dims.items():
            ids = np.flatnonzero(experts == e)
            if len(ids) == 0:
                continue
            pol = np.concatenate((base[ids], self.command[ids, :k].astype(np.float32)), axis=1)
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

        self.obs, _, done, info = env.step(actions * self.prim_scale[self.current][:, None])
        dropped = done & (info["terms"]["drop"] > 0) & ~info["unstable"]
        b["dropped"][rows, t] = dropped
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


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}"[:400]


def _worker_entropy(seed: int, index: int, at_open: int) -> list[int]:
    """Entropy of worker ``index``'s ``SeedSequence`` (either backend): the collection's seed, the worker's index and
    the number of episodes in the file when it was opened, so a resumed round draws other episodes than the rounds
    before it."""
    return [seed, index, at_open]


def _start_rollouts(spec: dict, index: int, entropy: list[int]) -> list[Rollout]:
    """A worker's rollouts. The worker's BLAS runs on one thread: the experts' small matrix products gain nothing
    from more, and OpenBLAS threads that spin after each product took a sixth of the core from the physics."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    return make_rollouts(spec, np.random.SeedSequence(entropy), index)


def _send(episodes: queue_mod.Queue, stop, message: tuple) -> bool:
    """Put ``message`` on the queue, waiting while it is full; False (without sending) once the parent is done."""
    while True:
        try:
            episodes.put(message, timeout=0.5)
            return True
        except queue_mod.Full:
            if stop.poll():
                return False


def _worker_main(spec: dict, index: int, entropy: list[int], episodes: queue_mod.Queue, stop) -> None:
    """A worker process: step the rollouts and send each finished episode until it has stepped its share
    (``spec["quota"]`` transitions; then it sends ("done", index, None)), or until ``stop`` (the read end of a pipe
    that only the parent writes to) says the parent is done or gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent stops us
    try:
        rollouts = _start_rollouts(spec, index, entropy)
        episodes.put(("ready", index, None))
        stepped, finished = 0, False
        while not finished:
            if stop.poll():
                episodes.cancel_join_thread()  # the parent no longer reads: exit without flushing
                return
            ended, stepped, finished = step_worker(rollouts, stepped=stepped, quota=spec["quota"])
            for episode in ended:
                if not _send(episodes, stop, ("episode", index, episode)):
                    episodes.cancel_join_thread()
                    return
        if _send(episodes, stop, ("done", index, None)):
            stop.poll(None)  # wait for the parent to finish
        else:
            episodes.cancel_join_thread()
    except BaseException as e:  # reported to the parent, which raises it
        if not stop.poll():
            episodes.put(("error", index, _one_line(e)))
        else:
            episodes.cancel_join_thread()


class CollectWorker:
    """A worker of the Ray backend, run as an actor (``ray.remote(num_cpus=1)(CollectWorker)``): the rollouts a local
    worker process would step, stepped a chunk of control steps per call. Its methods answer with the messages a
    local worker sends: ("ready", index, None), ("episodes", index, [episode, ...]), ("done", index, [episode, ...])
    once it has stepped its share (``spec["quota"]``), or ("error", index, one line)."""

    def __init__(self, spec: dict, index: int, entropy: list[int]):
        self.spec, self.index, self.entropy = spec, index, entropy
        self.rollouts: list[Rollout] = []
        self.stepped = 0

    def start(self) -> tuple:
        """Build the rollouts (environments and experts)."""
        try:
            self.rollouts = _start_rollouts(self.spec, self.index, self.entropy)
        except Exception as e:
            return ("error", self.index, _one_line(e))
        return ("ready", self.index, None)

    def run(self, steps: int) -> tuple:
        """Step every rollout ``steps`` control steps, in the order a local worker steps them; the episodes that
        ended, in the order they ended."""
        episodes = []
        try:
            for _ in range(steps):
                ended, self.stepped, finished = step_worker(self.rollouts, stepped=self.stepped,
                                                            quota=self.spec["quota"])  # fmt: skip
                episodes += ended
                if finished:
                    return ("done", self.index, episodes)
        except Exception as e:
            return ("error", self.index, _one_line(e))
        return ("episodes", self.index, episodes)


# ---- parent side ----------------------------------------------------------------------------------------------------
def _context():
    """The multiprocessing context of the workers: forkserver, with torch, MuJoCo and the expert code preloaded."""
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    return ctx


def _command_line(cfg: CollectConfig) -> str:
    return command_line("dexgen collect", cfg, always=("out", "transitions"))


def _validate(cfg: CollectConfig) -> list[str]:
    """The wrist orientations of ``cfg`` (its values checked when it was made), after checking that Ray imports for
    the ray backend and that every object has a grasp cache in every orientation."""
    from dexgen.sim.grasps import cache_path
    from dexgen.sim.objects import resolve_objects

    if cfg.backend == "ray":
        _import_ray()
    wrists = [w.strip() for w in cfg.wrists.split(",") if w.strip()]
    objects = resolve_objects(cfg.objects)
    for w in wrists:
        for o in objects:
            path = cache_path(o.name, w, root=None if cfg.grasp_dir is None else Path(cfg.grasp_dir))
            if not path.is_file():
                fix = f"dexgen grasps generate --objects {o.name} --wrist {w}"
                if cfg.grasp_dir is not None:
                    fix = f"dexgen reached-states --out {cfg.grasp_dir} --objects {o.name} --wrist {w}"
                raise CollectError(f"no grasp cache for {o.name!r} ({w}) at {path}; create it with: {fix}")
    return wrists


def _stop_workers(procs: list, stop_w) -> None:
    stop_w.close()  # every worker sees EOF on its end and returns
    deadline = time.monotonic() + 10.0
    for p in procs:
        p.join(timeout=max(0.1, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=5.0)


class _Committer:
    """The parent's side of either backend: commits episodes with the writer until the file holds ``target``
    transitions, counting the transitions of each primitive and the dropped episodes, and advancing the progress
    bar (``start_bar``).

    Episodes are committed in a fixed order, one from each worker in turn (worker 0's first, worker 1's first, ...,
    worker 0's second, ...; a worker that is done and has none left is passed over), whatever order they arrive
    in: each worker's episodes are a deterministic sequence, so the same seed and worker count give the same file
    however the operating system schedules the workers."""

    def __init__(self, writer, target: int):
        self.writer, self.target, self.bar = writer, target, None
        self.waiting: list[collections.deque] = []
        self.finished: list[bool] = []
        self.turn = 0
        n0 = writer.num_transitions
        self.counts = np.bincount(writer.file["steps"]["primitive_id"][:n0], minlength=len(PRIMITIVES))
        self.drops = int(np.sum(writer.file["steps"]["dropped"][:n0]))

    @property
    def done(self) -> bool:
        return self.writer.num_transitions >= self.target

    def start_bar(self, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.target, initial=self.writer.num_transitions, unit="step", desc="collecting",
                        smoothing=0.1, disable=not enabled)  # fmt: skip

    def set_workers(self, workers: int) -> None:
        """Number of workers whose episodes take turns."""
        self.waiting = [collections.deque() for _ in range(workers)]
        self.finished = [False] * workers
        self.turn = 0

    def add(self, worker: int, episode: tuple[dict[str, np.ndarray], str, str]) -> None:
        """Receive a finished episode of ``worker``; commit every episode whose turn has come."""
        self.waiting[worker].append(episode)
        self._commit_ready()

    def finish(self, worker: int) -> None:
        """``worker`` has sent its last episode."""
        self.finished[worker] = True
        self._commit_ready()

    @property
    def starved(self) -> bool:
        """Every worker is done and nothing waits, yet the target is not reached."""
        return not self.done and all(self.finished) and not any(self.waiting)

    def _commit_ready(self) -> None:
        while not self.done and not self.starved:
            if self.waiting[self.turn]:
                self._commit(self.waiting[self.turn].popleft())
            elif not self.finished[self.turn]:
                return  # this worker's next episode decides the order: wait for it
            self.turn = (self.turn + 1) % len(self.waiting)

    def _commit(self, episode: tuple[dict[str, np.ndarray], str, str]) -> None:
        steps, object_name, wrist = episode
        self.writer.append_episode(steps, object_name=object_name, wrist=wrist)
        n = len(steps["joint_pos"])
        self.counts += np.bincount(steps["primitive_id"], minlength=len(PRIMITIVES))
        self.drops += int(steps["dropped"][-1])
        if self.bar is not None:
            self.bar.update(min(n, self.target - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def collect(cfg: CollectConfig, *, progress: bool = True) -> dict:
    """Run a collection (see the module docstring); returns a summary: path, episodes and transitions in the file,
    new_episodes and new_transitions of this run, seconds, transitions_per_s (new transitions over the whole wall
    time, worker start included), startup_s (until every worker was ready), per-primitive transitions and dropped
    episodes in the file, workers."""
    from dexgen.data.store import EpisodeWriter

    start = time.perf_counter()
    wrists = _validate(cfg)
    experts = resolve_experts(cfg.experts)
    hands = sorted({e["hand"] for e in experts})
    if len(hands) > 1:
        raise CollectError(f"the experts were trained on different hands ({', '.join(hands)}); collect each hand's "
                           f"experts on their own")  # fmt: skip
    weights = parse_primitive_weights(cfg.primitive_weights)
    covered = {name for e in experts if e["wrist"] in wrists for name in e["primitives"]}
    if set(weights) - covered:
        raise CollectError(f"--primitive-weights names {', '.join(sorted(set(weights) - covered))}, which no expert "
                           f"performs in {', '.join(wrists)}")  # fmt: skip
    primitives = {w: primitive_table(experts, w, weights=weights) for w in wrists}
    for w, table in primitives.items():
        if not table and primitive_table(experts, w):
            raise CollectError(f"--primitive-weights leaves no primitive with a positive weight in {w}")
        if not table:
            have = sorted({e["wrist"] for e in experts})
            raise CollectError(f"no expert was trained in wrist orientation {w} (the experts cover {', '.join(have)}); "
                               f"train one (dexgen train-expert --wrist {w}) or leave {w} out of --wrists")  # fmt: skip
    workers = cfg.workers or len(os.sched_getaffinity(0))
    meta = {"collect_config": json.dumps(asdict(cfg)),
            "experts": json.dumps([{k: e[k] for k in ("path", "task", "axis", "wrist", "hand", "action_scale",
                                                      "shape_obs", "revision")} for e in experts]),
            "hand": hands[0],
            "action_scales": json.dumps({p["name"]: p["action_scale"]
                                         for table in primitives.values() for p in table})}  # fmt: skip
    spec = {"experts": experts, "primitives": primitives, "objects": cfg.objects, "wrists": wrists,
            "envs": cfg.envs_per_worker, "episode_seconds": cfg.episode_seconds,
            "action_noise_std": cfg.action_noise_std, "switch_prob_per_s": cfg.switch_prob_per_s,
            "grasp_dir": cfg.grasp_dir, "hand": hands[0]}  # fmt: skip

    created = not Path(cfg.out).exists()
    writer = EpisodeWriter(cfg.out, command=_command_line(cfg), seed=cfg.seed, resume=cfg.resume, meta=meta)
    committer, finished = None, False
    try:
        at_open = writer.num_episodes
        n0 = writer.num_transitions
        committer = _Committer(writer, cfg.transitions)
        startup_s = 0.0
        if n0 < cfg.transitions:
            committer.start_bar(progress and not cfg.json)
            run = _run_ray if cfg.backend == "ray" else _run_local
            startup_s, workers = run(cfg, spec, workers, at_open, committer, start)
        seconds = time.perf_counter() - start
        total, finished = writer.num_transitions, True
        return {
            "path": str(cfg.out),
            "episodes": writer.num_episodes,
            "transitions": total,
            "new_episodes": writer.num_episodes - at_open,
            "new_transitions": total - n0,
            "seconds": round(seconds, 2),
            "transitions_per_s": round((total - n0) / seconds, 1),
            "startup_s": round(startup_s, 2),
            "per_primitive": {name: int(c) for name, c in zip(PRIMITIVES, committer.counts) if c},
            "drops": committer.drops,
            "workers": workers,
        }
    finally:
        if committer is not None:
            committer.close()
        empty = writer.num_episodes == 0
        writer.close()
        if created and empty and not finished:  # a run that failed before its first episode leaves no file
            writer.path.unlink(missing_ok=True)  # the file itself (the writer follows links)


@contextlib.contextmanager
def _ctrl_c_recorded():
    """Within the block, Ctrl-C (SIGINT) is only recorded in the list it yields, for the parent's loop to raise
    as KeyboardInterrupt where it checks (a KeyboardInterrupt raised wherever the signal lands, e.g. in a
    finalizer, can be swallowed and the collection go on). In the main thread only (elsewhere Python delivers
    no signal)."""
    pressed: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _children_ignore_ctrl_c():
    """Block SIGINT in this thread while the block starts processes (the fork server, on first use, and the
    workers), which inherit the blocked signal: Ctrl-C in a terminal reaches the whole process group, and the
    parent alone handles it (it stops the workers)."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _run_local(cfg: CollectConfig, spec: dict, workers: int, at_open: int, committer: _Committer,
               start: float) -> tuple[float, int]:  # fmt: skip
    """Collect with worker processes until the committer is done; returns startup_s and the worker count."""
    committer.set_workers(workers)
    spec = {**spec, "quota": _quota(committer, workers)}
    ctx = _context()
    stop_r, stop_w = ctx.Pipe(duplex=False)
    episodes = ctx.Queue(QUEUE_SIZE)
    procs = []
    with _ctrl_c_recorded() as pressed:
        try:
            return _collect_local(cfg, spec, workers, at_open, committer, start, ctx, stop_r, episodes, procs,
                                  pressed)  # fmt: skip
        finally:
            _stop_workers(procs, stop_w)


def _collect_local(cfg: CollectConfig, spec: dict, workers: int, at_open: int, committer: _Committer, start: float,
                   ctx, stop_r, episodes, procs: list, pressed: list[int]) -> tuple[float, int]:  # fmt: skip
    """The body of ``_run_local``: start the workers (appended to ``procs``) and commit what they send until the
    committer is done; a KeyboardInterrupt once ``pressed`` (see ``_ctrl_c_recorded``) records a Ctrl-C."""
    with _children_ignore_ctrl_c():
        for w in range(workers):
            args = (spec, w, _worker_entropy(cfg.seed, w, at_open), episodes, stop_r)
            p = ctx.Process(target=_worker_main, args=args, daemon=True, name=f"dexgen-collect-{w}")
            p.start()
            procs.append(p)
    stop_r.close()
    ready, startup_s = 0, 0.0
    while not committer.done:
        if pressed:
            raise KeyboardInterrupt
        try:
            kind, index, payload = episodes.get(timeout=1.0)
        except queue_mod.Empty:
            _check_workers(procs, episodes)
            continue
        if kind == "error":
            raise CollectError(f"collect worker {index}: {payload}")
        if kind == "ready":
            ready += 1
            if ready == workers:
                startup_s = time.perf_counter() - start
        elif kind == "done":
            committer.finish(index)
        else:
            committer.add(index, payload)
        if committer.starved:
            raise CollectError(f"the workers stopped at {committer.writer.num_transitions} transitions, short "
                               f"of {committer.target}")  # fmt: skip
    return startup_s, workers


def _quota(committer: _Committer, workers: int) -> int:
    """Each worker's share of the transitions still needed: a worker steps this many, then ends its open episodes
    and stops, so a collection steps about as many transitions as it writes."""
    return -(-(committer.target - committer.writer.num_transitions) // workers)


def _import_ray():
    """The ray module, or a one-line CollectError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise CollectError(RAY_NEEDED) from None
    return ray


def _run_ray(cfg: CollectConfig, spec: dict, workers: int, at_open: int, committer: _Committer,
             start: float) -> tuple[float, int]:  # fmt: skip
    """Collect with ``CollectWorker`` actors until the committer is done, keeping one call in flight per actor;
    returns startup_s and the worker count. Uses the Ray instance this process is already connected to if there is
    one (and leaves it running); else starts a local one (or connects to ``cfg.ray_address``) and shuts it down when
    done, however it ends."""
    ray = _import_ray()
    started, actors = False, []
    try:
        if not ray.is_initialized():
            started = True
            where = "start a local Ray instance" if cfg.ray_address is None else f"connect to Ray at {cfg.ray_address}"
            options = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
            if cfg.ray_address is None:
                options["num_cpus"] = workers
            else:
                options["address"] = cfg.ray_address
            try:
                ray.init(**options)
            except Exception as e:
                raise CollectError(f"cannot {where}: {_one_line(e)}") from None
        if cfg.workers == 0 and cfg.ray_address is not None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        committer.set_workers(workers)
        spec = {**spec, "quota": _quota(committer, workers)}
        remote = ray.remote(num_cpus=1)(CollectWorker)
        for w in range(workers):
            actors.append(remote.remote(spec, w, _worker_entropy(cfg.seed, w, at_open)))
        pending = {actor.start.remote(): w for w, actor in enumerate(actors)}
        ready, startup_s = 0, 0.0
        while not committer.done:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            w = pending.pop(ref)
            try:
                kind, index, payload = ray.get(ref)
            except ray.exceptions.RayError as e:
                raise CollectError(f"collect worker {w} exited unexpectedly ({_one_line(e)})") from None
            if kind == "error":
                raise CollectError(f"collect worker {index}: {payload}")
            if kind != "done":
                pending[actors[w].run.remote(RAY_CHUNK_STEPS)] = w  # the next chunk steps while these are written
            if kind == "ready":
                ready += 1
                if ready == workers:
                    startup_s = time.perf_counter() - start
                continue
            for episode in payload:
                committer.add(index, episode)
            if kind == "done":
                committer.finish(index)
            if committer.starved:
                raise CollectError(f"the workers stopped at {committer.writer.num_transitions} transitions, short "
                                   f"of {committer.target}")  # fmt: skip
        return startup_s, workers
    finally:
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # already gone
                pass
        if started:
            ray.shutdown()


def _check_workers(procs: list, episodes) -> None:
    """Raise if a worker has exited while the parent still needs it (with its error message if it sent one)."""
    dead = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode is not None]
    if not dead:
        return
    try:
        while True:
            kind, index, payload = episodes.get(timeout=1.0)
            if kind == "error":
                raise CollectError(f"collect worker {index}: {payload}")
    except queue_mod.Empty:
        pass
    i, code = dead[0]
    raise CollectError(f"collect worker {i} exited unexpectedly (exit code {code})")


def run_collect(cfg: CollectConfig) -> dict:
    """The collect command."""
    return collect(cfg, progress=not cfg.json)

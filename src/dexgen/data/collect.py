"""``dexgen collect``: roll out the RL experts in the batched simulator and write their motion to a dataset.

Worker processes (``multiprocessing``, forkserver start) each step their own ``HandEnv`` per wrist orientation (one
simulation thread each). Every simulation carries out one primitive at a time (rotate about a signed palm axis,
translate by an offset toward one, or grasp_to_grasp toward a target finger configuration); at random moments
(``switch_prob_per_s``) it switches to another primitive within the same episode, so the data covers the transitions
between motions. The expert of the current primitive acts, Gaussian exploration noise is added to its action, and
the environment applies the noisy action with the expert's action scale. An episode ends when the object drops (its
last step, with ``dropped`` set, is kept) or at a time-out; the worker then sends it to the parent process, the only
writer, which commits it with ``EpisodeWriter.append_episode``. So the file only ever shows complete episodes, and a
collection killed at any moment and restarted with ``resume`` loses no committed episode: a resumed round seeds its
workers with the number of episodes already in the file, so it draws new episodes rather than the lost round's
again. Each worker steps an equal share of the transitions still needed, then ends its open episodes there (as
time-outs) and stops: so a collection steps about as many transitions as it writes, instead of throwing away the
half-finished episodes of every simulation at the end (about half an episode per simulation, a large share of a
small run).

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
trained in (history 1). All simulations that use one expert are batched into one forward pass. A translation's
command is an offset drawn (``collect_experts._translate_offsets``) from where the object is when the primitive
starts; the dataset records the offset, and the expert sees the displacement that remains, as in training.

Rows follow ``dexgen.data.schema``: each is the state at the start of a control step (true joint positions), the
targets then in force, and the raw (noisy, unscaled) action computed from it.

The parts: ``collect_experts`` (the experts' records and the primitive tables), ``collect_rollout`` (the rollouts a
worker steps) and ``collect_workers`` (the local and Ray workers and the committer).
"""

from __future__ import annotations

import json
import logging
import os
import queue as queue_mod
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dexgen.data.collect_experts import CollectError, parse_primitive_weights, primitive_table, resolve_experts
from dexgen.data.collect_workers import (
    QUEUE_SIZE,
    RAY_CHUNK_STEPS,
    CollectWorker,
    _check_workers,
    _children_ignore_ctrl_c,
    _Committer,
    _context,
    _ctrl_c_recorded,
    _import_ray,
    _one_line,
    _quota,
    _stop_workers,
    _worker_entropy,
    _worker_main,
)
from dexgen.data.schema import CONTROL_HZ, PRIMITIVES
from dexgen.provenance import command_line

BACKENDS = ("local", "ray")
"""Where the workers run: local processes (``multiprocessing``) or Ray actors."""


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


def run_collect(cfg: CollectConfig) -> dict:
    """The collect command."""
    return collect(cfg, progress=not cfg.json)

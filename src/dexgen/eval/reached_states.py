"""``dexgen reached-states``: the states the guided controller drives the hand into, saved as grasp caches.

Behaviour cloning's weak spot: the diffusion prior and the inverse dynamics model learned from the experts' states,
and a hand they drive drifts into states the experts seldom visit, where (``scripts/plan_vs_execution.py``) the
fingers keep moving but the object stops turning. Data aggregation (DAgger) closes the loop: run the guided
controller as ``dexgen eval`` runs it (same method, command sources and episode settings), take snapshots of the
hand and the object while it still holds the object, and let the RL experts act from those states
(``dexgen collect --grasp-dir DIR``), so the new data shows what an expert does there.

Snapshots are taken every ``every_s`` seconds from ``after_s`` on, of every simulation still holding its object;
each is a hand pose, the joint targets in force and the object's pose (palm frame), the fields of a
``dexgen.sim.grasps.GraspCache``, written per object to ``OUT/<wrist>/<object>.npz`` (an episode started from one
begins at rest: velocities are not kept). Use training objects (the default), never the evaluation's held-out ones.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dexgen.controller.dexgen_controller import DexGenController
from dexgen.eval.teleop_eval import EvalConfig, LiveCommandPolicy, for_model, guided_config, make_source
from dexgen.model.checkpoint import load_model, shipped_model_path
from dexgen.provenance import command_line, revision
from dexgen.rl.evaluate import expert_env
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.sim.grasps import GraspCache, cache_path
from dexgen.sim.rollout import rollout


@dataclass
class ReachedStatesConfig:
    """Record the states the guided controller reaches (for data aggregation) as grasp caches."""

    out: str
    """Directory to write: OUT/<wrist>/<object>.npz, one grasp cache per object (``dexgen collect --grasp-dir``)."""
    objects: str = "train"
    """Object set or names (keep the evaluation's held-out objects out of training data)."""
    wrist: str = "palm_down"
    """Wrist orientation: the shipped experts and model of this orientation are used."""
    axes: str = "+z,-z"
    """Commanded rotation axes, comma-separated (each needs a shipped expert)."""
    sources: str = "full"
    """Command sources as ``dexgen eval --sources`` takes them, or full / quick: the suite's."""
    seeds: str = "0"
    """Comma-separated seeds (initial grasps, physics, commands, sampling); use seeds the evaluation does not."""
    episodes: int = 1
    """Episodes per object per axis, source and seed."""
    seconds: float = 30.0
    """Episode length, seconds."""
    after_s: float = 5.0
    """First snapshot this long into an episode, seconds."""
    every_s: float = 1.0
    """Time between snapshots of one episode, seconds."""
    checkpoint: str | None = None
    """Model weights; None: the shipped model of the wrist orientation."""
    threads: int = 0
    """Simulation and PyTorch threads; 0 uses every core."""
    json: bool = False
    """Print one JSON object instead of the summary."""

    def __post_init__(self) -> None:
        sources = self.sources if self.sources not in ("full", "quick") else None
        EvalConfig(
            objects=self.objects,
            wrist=self.wrist,
            axes=self.axes,
            sources=sources,
            seeds=self.seeds,
            episodes=self.episodes,
            seconds=self.seconds,
            threads=self.threads,
        )  # the checks of dexgen eval
        if (
            not (np.isfinite(self.after_s) and np.isfinite(self.every_s))
            or self.after_s < 0
            or self.every_s <= 0
            or self.seconds <= self.after_s
        ):
            raise ValueError(f"need 0 <= after_s < seconds and every_s > 0, got after_s {self.after_s}, every_s "
                             f"{self.every_s}, seconds {self.seconds}")  # fmt: skip


def _snapshots(env, policy, *, after: int, every: int) -> tuple[dict[str, list], int]:
    """Run one episode per simulation under ``policy``; the states (GraspCache fields, (16,) / (3,) / (4,) arrays
    per snapshot) of the simulations still holding their object at steps after, after + every, ..., per object
    name, and the episodes' total held steps."""
    states: dict[str, list] = {}
    alive = np.ones(env.num_envs, dtype=bool)

    def on_step(t: int) -> None:
        alive[:] &= env.episode_length > 0  # a drop resets the simulation (its episode length back to 0)
        if t + 1 < after or (t + 1 - after) % every:
            return
        pos, quat = env.sims.object_pose()
        q = env.sims.hand_q
        for i in np.flatnonzero(alive):
            states.setdefault(env.env_objects[i].name, []).append((q[i].copy(), env.targets[i].copy(),
                                                                    pos[i].copy(), quat[i].copy()))  # fmt: skip

    r = rollout(env, policy, on_step=on_step)
    return states, int(r.hold_steps.sum())


def reached_states(cfg: ReachedStatesConfig, *, progress: bool = True) -> dict:
    """Run the guided controller and write the caches (see the module docstring); returns a summary."""
    from tqdm import tqdm

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    sources = cfg.sources if cfg.sources not in ("full", "quick") else None
    ecfg = EvalConfig(suite="quick" if cfg.sources == "quick" else "full", checkpoint=cfg.checkpoint,
                      objects=cfg.objects, axes=cfg.axes, sources=sources, seeds=cfg.seeds, episodes=cfg.episodes,
                      seconds=cfg.seconds, wrist=cfg.wrist, sweep="", threads=cfg.threads)  # fmt: skip
    path = cfg.checkpoint or shipped_model_path(cfg.wrist)
    model = load_model(path, wrist=cfg.wrist)
    ecfg = for_model(ecfg, model)
    axes = [a.strip() for a in ecfg.axes.split(",") if a.strip()]
    names = [s.strip() for s in ecfg.sources.split(",") if s.strip()]
    seeds = [int(s) for s in str(ecfg.seeds).split(",") if s.strip()]
    experts = {a: Expert.load(shipped_expert_path("rotate", a, cfg.wrist), task="rotate", axis=a, wrist=cfg.wrist)
               for a in axes}  # fmt: skip
    start = time.perf_counter()
    states: dict[str, list] = {}
    held = episodes = 0
    bar = tqdm(total=len(axes) * len(seeds) * len(names), desc="reached states", unit="rollout",
               disable=not progress or cfg.json)  # fmt: skip
    for axis in axes:
        for seed in seeds:

            def env(axis=axis, seed=seed):
                return expert_env(experts[axis], ecfg.objects, seed=seed, episodes=ecfg.episodes,
                                  seconds=ecfg.seconds, threads=ecfg.threads, wrist=ecfg.wrist)  # fmt: skip

            ref = rollout(env(), lambda obs, _t, x=experts[axis]: x.act(obs), record_tips=True)
            for name in names:
                e = env()
                ctrl = DexGenController(
                    model, config=guided_config(ecfg, seed=seed), batch=e.num_envs, gravity_dir=e.sims.gravity_dir
                )
                live = LiveCommandPolicy(e, make_source(name, axis, ecfg.omega, ref), seed, ctrl.act)
                every = max(1, round(cfg.every_s / e.dt))
                found, steps = _snapshots(e, live, after=round(cfg.after_s / e.dt), every=every)
                for obj, s in found.items():
                    states.setdefault(obj, []).extend(s)
                held += steps
                episodes += e.num_envs
                bar.update(1)
    bar.close()
    if not states:
        raise ValueError("no simulation held its object long enough for a snapshot: lower --after-s")
    meta = {
        "command": command_line("dexgen reached-states", replace(cfg, json=False)),
        "seed": seeds[0],
        "seeds": seeds,
        "revision": revision(),
        "model": str(path),
        "method": {k: v for k, v in asdict(ecfg.guided).items() if k != "seed"},
    }  # fmt: skip
    written = {}
    for obj, s in sorted(states.items()):
        q, targets, pos, quat = (np.array(x) for x in zip(*s))
        out = cache_path(obj, cfg.wrist, root=Path(cfg.out))
        out.parent.mkdir(parents=True, exist_ok=True)
        GraspCache(obj, cfg.wrist, hand_q=q, targets=targets, object_pos=pos, object_quat=quat, meta=meta).save(out)
        written[obj] = len(q)
    return {
        "out": cfg.out,
        "states": written,
        "total": sum(written.values()),
        "episodes": episodes,
        "held_s_mean": round(held / max(episodes, 1) * e.dt, 2),
        "wall_s": round(time.perf_counter() - start, 1),
    }

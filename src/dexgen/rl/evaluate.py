"""Evaluating an expert: per-object holding time, drop rate and task progress over fixed-length episodes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tyro
from scipy.stats import binomtest

from dexgen.checks import check_choice, check_int, check_number
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.rl.run_expert import expert_from_checkpoint
from dexgen.rl.train import config_from_dict, make_env
from dexgen.sim.constants import DEFAULT_WRIST
from dexgen.sim.env import HandEnv
from dexgen.sim.hand import check_wrist
from dexgen.sim.objects import resolve_objects
from dexgen.sim.rollout import rollout
from dexgen.sim.tasks import TASKS, make_task


@dataclass
class EvalExpertConfig:
    """Run an expert for fixed-length episodes and report per-object and overall figures."""

    checkpoint: tyro.conf.Positional[str | None] = None
    """Expert weights (.safetensors) or a training run's last.pt; None loads the shipped expert of task/axis."""
    task: str = "rotate"
    """Task (used to find the shipped expert, and checked against the expert's own)."""
    axis: str = "+z"
    """Axis or direction (as for train-expert); several ('all', a comma list) are evaluated one by one
    (``per_axis``), as an axis-conditioned expert should be."""
    episodes: int = 8
    """Episodes per object."""
    seconds: float = 20.0
    """Episode length, seconds."""
    objects: str = "train"
    """Object set (train, heldout, all) or names."""
    seed: int = 1
    """Seed of grasps, randomization and commands."""
    threads: int = 0
    """Simulation threads; 0 uses every core."""
    video: str | None = None
    """Render the first episode to this path (.mp4 or .gif)."""
    wrist: str | None = None
    """Wrist orientation (palm_up, palm_down, sideways). Without CHECKPOINT it picks the shipped expert of that
    orientation; None: palm_up, or the orientation CHECKPOINT was trained in."""
    reach_tolerance: float = 0.005
    """Translation: an episode reached its target if the object came within this distance of it (palm x/y plane)
    while held, metres."""
    gravity: float = 1.0
    """Gravity as a share of full gravity (a curriculum's stage; the targets are at 1)."""
    hold_still: bool = False
    """Replace the expert's actions by zeros (joint targets fixed at the grasp): the drop rate of a hand that does
    nothing, the reference an expert must beat at holding on."""
    json: bool = False
    """Print one JSON object instead of a table."""

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        check_number("gravity", self.gravity, ge=0.0, le=1.0)
        check_number("reach_tolerance", self.reach_tolerance, gt=0)
        check_int("episodes", self.episodes, ge=1)
        check_number("seconds", self.seconds, gt=0)
        resolve_objects(self.objects)
        check_int("threads", self.threads, ge=0)
        check_wrist("wrist", self.wrist, optional=True)
        if self.task != "grasp_to_grasp":
            make_task(self.task, 1, TASKS[self.task][1](axes=self.axis))  # names a bad axis before any work


def expert_env(expert: Expert, objects: str, *, episodes: int, seconds: float, seed: int, threads: int = 0,
               axis: str | None = None, wrist: str | None = None) -> HandEnv:  # fmt: skip
    """The environment ``expert`` was trained in (its record's settings: task, wrist, action scale, ...), with
    ``episodes`` simulations per object of ``objects`` (a set or names), ``seconds`` per episode, seeded by ``seed``;
    ``axis`` and ``wrist`` replace the commanded axis and the wrist orientation. Episodes start from the shipped grasp
    caches, whichever the expert trained from. Environments built alike start from identical states."""
    names = [o.name for o in resolve_objects(objects)]
    cfg = config_from_dict({k: v for k, v in expert.record["env"].items() if k != "ppo"})
    cfg = replace(
        cfg,
        objects=",".join(names),
        object_weights="",  # every object gets its episodes, whatever shares the expert trained with
        episode_seconds=seconds,
        threads=threads,
        axis=axis or cfg.axis,
        sphere_share=0.0,  # evaluated about the axes named, never drawn over the sphere
        wrist=wrist or cfg.wrist,
        grasp_dir=None,  # the shipped grasps, so that experts trained from other caches compare on the same starts
    )
    env = make_env(cfg, num_envs=len(names) * episodes, seed=seed)
    if env.obs_dims != expert.record["obs_dims"]:
        raise ValueError(f"expert expects observations {expert.record['obs_dims']}, environment gives {env.obs_dims}")
    return env


def wilson_interval(successes: int, trials: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a rate of ``successes`` in ``trials`` (scipy's ``binomtest``): with the few
    hundred episodes of an expert's evaluation a drop rate is known to a few points, and a target of 10 % needs
    the interval, not the point. (0, 1) without trials."""
    if trials <= 0:
        return 0.0, 1.0
    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _summary(hold_s, drop, progress, success, seconds, reach_s) -> dict:
    reached = reach_s[success]
    return {
        "episodes": int(len(hold_s)),
        "holding_s_mean": float(np.mean(hold_s)),
        "holding_s_median": float(np.median(hold_s)),
        "drop_rate": float(np.mean(drop)),
        "drop_rate_ci95": list(wilson_interval(int(np.sum(drop)), len(drop))),
        "progress_mean": float(np.mean(progress)),
        "progress_median": float(np.median(progress)),
        "success_rate": float(np.mean(success)),
        "success_s_median": float(np.median(reached)) if len(reached) else None,
        "seconds": seconds,
    }


def translate_figures(distance: np.ndarray, dt: float, tolerance: float) -> dict[str, np.ndarray]:
    """Per-episode figures of goal reaching from ``distance`` (steps, N): each episode's distance to its target
    after every step it held the object (NaN elsewhere, see ``dexgen.sim.rollout.Rollout.distance``), metres.
    Returns (N,) arrays: ``reached`` (came within ``tolerance`` at some step), ``reach_s`` (the time it first did,
    seconds; NaN if never), ``closest`` (the least distance, metres; NaN if it never held) and ``final`` (the
    distance after the last step, at the horizon, metres; NaN for an episode that dropped the object)."""
    held = ~np.isnan(distance)
    within = held & (distance <= tolerance)
    reached = within.any(axis=0)
    reach_s = np.where(reached, (np.argmax(within, axis=0) + 1) * dt, np.nan)
    closest = np.where(held.any(axis=0), np.min(np.where(held, distance, np.inf), axis=0), np.nan)
    last = distance[-1]
    return {"reached": reached, "reach_s": reach_s, "closest": closest, "final": last}


def _translate_summary(fig: dict, final: np.ndarray, reached: np.ndarray, tolerance: float) -> dict:
    held = final[~np.isnan(final)]
    fig["reached_share"] = float(np.mean(reached))
    fig["at_target_share"] = float(np.mean(np.nan_to_num(final, nan=np.inf) <= tolerance))
    fig["final_error_mm_median"] = float(1000.0 * np.median(held)) if len(held) else None
    fig["final_error_episodes"] = int(len(held))
    return fig


def load_expert_for_eval(cfg: EvalExpertConfig) -> Expert:
    """The expert named by ``cfg.checkpoint``: shipped weights when None, a run checkpoint (.pt) or weights."""
    if cfg.checkpoint is None:
        wrist = cfg.wrist or DEFAULT_WRIST
        return Expert.load(shipped_expert_path(cfg.task, cfg.axis, wrist), task=cfg.task, axis=cfg.axis, wrist=wrist)
    if cfg.checkpoint.endswith(".pt"):
        return expert_from_checkpoint(Path(cfg.checkpoint))
    return Expert.load(cfg.checkpoint)


def _rename(fig: dict, key: str) -> dict:
    mean, median = fig.pop("progress_mean"), fig.pop("progress_median")
    if key != "progress":
        fig[key], fig[f"{key}_median"] = mean, median
    return fig


def evaluate_expert(expert: Expert, cfg: EvalExpertConfig, *, progress_bar: bool = True) -> dict:
    """Returns {"per_object": {name: figures}, "overall": figures} where the figures are episodes,
    holding_s_mean / _median, drop_rate, success_rate and success_s_median (grasp_to_grasp: the median time to
    success over the episodes that succeeded; None without any), and angvel_rad_per_s (rotate: mean over
    episodes of the mean angular velocity about the commanded axis while held, signed; _median: the median over
    episodes, which one fast-spinning object cannot inflate). Translate (goal reaching, see ``translate_figures``):
    success is coming within ``cfg.reach_tolerance`` of the target while held, and success_s_median the median time
    to get there; reached_share (the success rate: an object that passes the target counts), at_target_share (the
    share of episodes whose object is within the tolerance at the horizon, still held), final_error_mm_median (the
    distance to the target at the horizon, median over the episodes that held on to it, final_error_episodes of
    them; None without any) and closest_mm / closest_mm_median (the least distance to the target, mean and median
    over episodes, mm)."""
    if expert.task != cfg.task:
        raise ValueError(f"expert was trained for task {expert.task!r}, not {cfg.task!r}")
    objects = resolve_objects(cfg.objects)
    env = expert_env(expert, cfg.objects, episodes=cfg.episodes, seconds=cfg.seconds, seed=cfg.seed,
                     threads=cfg.threads, axis=cfg.axis, wrist=cfg.wrist)  # fmt: skip
    n = env.num_envs
    renderer = frames = None
    if cfg.video:
        from dexgen.sim.render import SimRenderer

        renderer, frames = SimRenderer(env.sims, sim=0), []
    command = env.task.command.copy()
    held_first = np.ones(1, dtype=bool)

    def render(_t: int) -> None:
        held_first[0] &= env.episode_length[0] > 0  # the first environment's episode has not restarted
        if held_first[0]:
            frames.append(renderer.frame())

    env.set_gravity_scale(cfg.gravity)

    def act(obs: np.ndarray, _t: int) -> np.ndarray:
        if not cfg.hold_still:
            return expert.act(obs)
        relative = env.config.action_mode == "relative"
        return np.zeros((n, env.num_actions)) if relative else env.targets / env.config.action_scale

    r = rollout(env, act,
                on_step=render if renderer is not None else None,
                progress="evaluating" if progress_bar else None)  # fmt: skip
    hold_s, dropped, succeeded = r.hold_s, r.dropped, r.succeeded
    reach_s = r.hold_steps * r.dt  # a success ends the episode's clock (its holding still counts to the horizon)
    if cfg.task == "rotate":
        prog = r.rate_about(command)
    elif cfg.task == "translate":  # success: reaching the target (the episode goes on, to hold it there)
        goal = translate_figures(r.distance, r.dt, cfg.reach_tolerance)
        start = np.linalg.norm(command[:, :2], axis=-1)  # an episode that never held got no closer than this
        prog = 1000.0 * np.where(np.isnan(goal["closest"]), start, goal["closest"])
        succeeded, reach_s = goal["reached"], goal["reach_s"]
    else:
        prog = np.zeros(n)
    key = {"rotate": "angvel_rad_per_s", "translate": "closest_mm"}.get(cfg.task, "progress")

    def figures(m: np.ndarray) -> dict:
        fig = _rename(_summary(hold_s[m], dropped[m], prog[m], succeeded[m], cfg.seconds, reach_s[m]), key)
        if cfg.task == "translate":
            fig = _translate_summary(fig, goal["final"][m], goal["reached"][m], cfg.reach_tolerance)
        return fig

    names = np.array([o.name for o in env.env_objects])
    per_object = {o.name: figures(names == o.name) for o in objects}
    overall = figures(np.ones(n, dtype=bool))
    out = {"task": cfg.task, "axis": cfg.axis, "wrist": env.config.wrist, "objects": cfg.objects, "seed": cfg.seed,
           "gravity": cfg.gravity, "hold_still": cfg.hold_still, "per_object": per_object,
           "overall": overall}  # fmt: skip
    if renderer is not None:
        from dexgen.sim.render import write_video

        renderer.close()
        out["video"] = str(write_video(cfg.video, frames, fps=1.0 / env.dt))
    return out


def evaluate_axes(expert: Expert, cfg: EvalExpertConfig, *, progress_bar: bool = True) -> dict:
    """``evaluate_expert`` about each axis ``cfg.axis`` names ('all' or a comma list: an axis-conditioned expert's
    directions), ``cfg.episodes`` per object and axis: {"per_axis": {axis: that axis's ``evaluate_expert`` result},
    ...}; a single axis gives ``evaluate_expert``'s result."""
    names = axis_names(cfg.task, cfg.axis)
    if len(names) <= 1:
        return evaluate_expert(expert, cfg, progress_bar=progress_bar)
    per_axis = {a: evaluate_expert(expert, replace(cfg, axis=a, video=cfg.video if i == 0 else None),
                                   progress_bar=progress_bar) for i, a in enumerate(names)}  # fmt: skip
    first = next(iter(per_axis.values()))
    return {**{k: v for k, v in first.items() if k not in ("per_object", "overall", "video")}, "axis": cfg.axis,
            "per_axis": per_axis, **({"video": first["video"]} if "video" in first else {})}  # fmt: skip


def axis_names(task: str, spec: str) -> tuple[str, ...]:
    """The axes an eval-expert axis spec names for ``task`` (grasp_to_grasp: one, unnamed)."""
    if task == "grasp_to_grasp":
        return (spec,)
    return make_task(task, 1, TASKS[task][1](axes=spec)).axis_names


def run_eval_expert(cfg: EvalExpertConfig) -> dict:
    """The eval-expert command: load the expert ``cfg`` names and evaluate it (about each axis it names)."""
    return evaluate_axes(load_expert_for_eval(cfg), cfg, progress_bar=not cfg.json)

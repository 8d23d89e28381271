"""Training PPO experts: a loop over rsl-rl's PPO with progress, TensorBoard, checkpoints and exact resume.

Exact resume: training runs in segments of ``save_interval`` iterations. Each segment starts by re-seeding torch
and resetting every environment from a seed derived from (seed, iteration), and ends with a checkpoint. A run
that is interrupted and resumed from its last checkpoint therefore continues exactly as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from dexgen.checks import check_choice, check_int, check_number
from dexgen.files import atomic_path, read_torch_checkpoint
from dexgen.name_values import finite_float, parse_name_values
from dexgen.provenance import revision
from dexgen.rl.config import PPOConfig
from dexgen.rl.expert_files import ExpertError, read_expert_files
from dexgen.rl.vec_env import RslVecEnv
from dexgen.sim import constants as C
from dexgen.sim.env import EnvConfig, HandEnv
from dexgen.sim.hand import check_wrist
from dexgen.sim.tasks import TASKS, RotateConfig, TranslateConfig


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not match the configuration."""


@dataclass(frozen=True)
class GravityCurriculum:
    """Train at reduced gravity first and raise it as drops become rare (Chen et al., 2021, for palm-down
    reorientation): an object that falls at once gives a learner nothing to improve on."""

    start: float = 1.0
    """Gravity at the start of the run, as a share of full gravity (1: no curriculum)."""
    step: float = 0.1
    """Raise gravity by this share each time the drop rate is below ``max_drops``."""
    max_drops: float = 0.5
    """Raise gravity when the drops per 1,000 environment steps, averaged over the last ``min_iterations``
    iterations at the current gravity, are below this."""
    min_iterations: int = 10
    """Iterations at one gravity before it may be raised again, and the window of the drop average."""

    def __post_init__(self):
        check_number("gravity.start", self.start, ge=0.0, le=1.0)
        check_number("gravity.step", self.step, gt=0.0, le=1.0)
        check_number("gravity.max_drops", self.max_drops, gt=0.0)
        check_int("gravity.min_iterations", self.min_iterations, ge=1)

    def next_scale(self, scale: float, drops_per_1k: list[float]) -> float:
        """The gravity share to train at next, given the current one and the drop rates (per 1,000 steps) of the
        iterations run at it, oldest first (the last ``min_iterations`` count: a learner's early drops at a new
        gravity must not hold it back once it has learned to hold on)."""
        recent = drops_per_1k[-self.min_iterations :]
        if scale >= 1.0 or len(recent) < self.min_iterations or np.mean(recent) >= self.max_drops:
            return scale
        return min(1.0, round(scale + self.step, 6))


@dataclass
class TrainExpertConfig:
    """Train one PPO expert (a motion primitive) in the batched simulator."""

    task: str = "rotate"
    """Task: rotate, translate or grasp_to_grasp."""
    axis: str = "+z"
    """Rotation axis (+x,-x,+y,-y,+z,-z, a comma list, all, or three numbers x,y,z) or directions of translation
    (all: any angle in the palm x/y plane, or a comma list of +x,-x,+y,-y); ignored by grasp_to_grasp."""
    sphere_share: float = 0.0
    """Rotation: share of episodes whose axis is drawn uniformly over the sphere instead of from ``axis`` (one
    policy conditioned on the axis learns every direction)."""
    translate_min: float = TranslateConfig.min_distance
    """Translation: least length of a commanded offset, metres."""
    translate_max: float = TranslateConfig.max_distance
    """Translation: greatest length of a commanded offset, metres."""
    translate_tolerance: float = TranslateConfig.tolerance
    """Translation: the hold bonus pays for each step the object is within this distance of its target, metres."""
    envs: int = 256
    """Parallel environments."""
    iterations: int = 500
    """PPO iterations (each collects envs x steps_per_env transitions)."""
    seed: int = 0
    """Seed of the environment, the networks and sampling."""
    out: str = "runs/experts"
    """Parent directory of the run directory."""
    run_name: str | None = None
    """Run directory name; default <task><axis>_s<seed>, with _<wrist> before _s<seed> for a wrist other than
    palm_up (so that runs of the two wrists never share a directory)."""
    save_interval: int = 50
    """Iterations per checkpoint (and per re-seeded segment)."""
    resume: bool = False
    """Continue from the run directory's last checkpoint."""
    init_from: str | None = None
    """Start a new run from the actor and critic (with their normalizers) of another run's checkpoint, e.g. to
    continue with other PPO settings or reward scales, or in another wrist orientation; its environment steps and
    wall time count toward this run."""
    init_actor: str | None = None
    """Start a new run from an exported expert's actor (its .safetensors with the JSON record beside it, e.g. a
    shipped expert): its weights, action noise and observation normalizer, and its steps, time and history; the
    critic starts untrained (see critic_warmup). For fine-tuning an expert whose training checkpoint is gone (only
    the actors ship)."""
    action_std: float | None = None
    """With --init-actor or --init-from: set the action noise of every joint to this standard deviation at the start
    (the exported experts' own are 0.45-0.85, so that training rollouts differ much from the noise-free policy that
    eval-expert measures); it is learned from there. None: keep the source's."""
    critic_warmup: int = 0
    """Iterations at the start of the run that fit only the critic, the actor frozen: an untrained critic's
    advantages are noise, and following them would pull a trained actor off course."""
    reward: str = ""
    """Reward-scale overrides, comma-separated name=value (e.g. drop=-50); empty: the task's defaults."""
    device: str = "auto"
    """Torch device for the update: auto (cuda if present), cpu or cuda."""
    objects: str = "train"
    """Object set or names."""
    object_weights: str = ""
    """Comma-separated name=share (positive integers): such an object gets about share times as many environments
    as the others (e.g. sphere_r25=3 for a curriculum toward the objects that drop most); empty: equal shares. May
    differ from an --init-from or --init-actor source's."""
    wrist: str = "palm_up"
    """Wrist orientation."""
    hand: str = C.DEFAULT_HAND
    """Hand model: allegro (the Allegro Hand v4's kinematics) or legacy (the hand the shipped experts know)."""
    grasp_dir: str | None = None
    """Root of the grasp caches to start episodes from (``<dir>/<wrist>/<object>.npz``, as ``dexgen grasps
    generate --out-dir`` writes them); None uses the caches shipped for the hand."""
    gravity: GravityCurriculum = field(default_factory=GravityCurriculum)
    """Gravity curriculum (off by default: full gravity throughout)."""
    shape_obs: bool = False
    """Show the actor and critic the object's shape code (geom type and half-extents) in the privileged
    observation; it changes the observation size, so a source for --init-from / --init-actor must have the same."""
    episode_seconds: float = 20.0
    """Episode length, seconds."""
    action_scale: float = 0.05
    """Radians of target change per unit action (relative actions)."""
    threads: int = 0
    """Threads of the simulation and of torch's update; 0 uses every core. Give each of several concurrent runs its
    share (e.g. 1 each for two runs on two cores): oversubscribed cores slow every run down."""
    max_minutes: float = 0.0
    """Stop at the last checkpoint before this much wall time has passed in this process (0: no limit); the run
    continues exactly with --resume."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO settings."""

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        check_int("envs", self.envs, ge=1)
        check_int("iterations", self.iterations, ge=1)
        check_int("save_interval", self.save_interval, ge=1)
        check_int("critic_warmup", self.critic_warmup, ge=0)
        check_wrist("wrist", self.wrist)
        check_choice("hand", self.hand, C.HANDS)
        if self.grasp_dir is not None and not Path(self.grasp_dir, self.wrist).is_dir():
            raise ValueError(f"grasp_dir {self.grasp_dir!r} has no {self.wrist}/ folder of grasp caches")
        check_number("sphere_share", self.sphere_share, ge=0.0, le=1.0)
        check_number("translate_min", self.translate_min, ge=0.0)
        check_number("translate_max", self.translate_max, gt=0.0)
        check_number("translate_tolerance", self.translate_tolerance, gt=0.0)
        if self.translate_min > self.translate_max:
            raise ValueError(f"translate_min {self.translate_min} exceeds translate_max {self.translate_max}")
        translate_config(self)  # a bad direction of translation is named before any work
        check_number("episode_seconds", self.episode_seconds, gt=0)
        check_number("action_scale", self.action_scale, gt=0)
        check_int("threads", self.threads, ge=0)
        check_number("max_minutes", self.max_minutes, ge=0)

    @property
    def name(self) -> str:
        suffix = "" if self.task == "grasp_to_grasp" else self.axis.replace(",", "")
        wrist = "" if self.wrist == "palm_up" else f"_{self.wrist}"
        return self.run_name or f"{self.task}{suffix}{wrist}_s{self.seed}"


def config_from_dict(d: dict) -> TrainExpertConfig:
    """The TrainExpertConfig a checkpoint or an expert record stored as a dict (nested configs rebuilt; keys of
    options added since take their defaults)."""
    d = dict(d)
    if isinstance(d.get("ppo"), dict):
        ppo = d["ppo"]
        d["ppo"] = PPOConfig(**{**ppo, "actor_hidden": tuple(ppo["actor_hidden"]),
                                "critic_hidden": tuple(ppo["critic_hidden"])})  # fmt: skip
    if isinstance(d.get("gravity"), dict):
        d["gravity"] = GravityCurriculum(**d["gravity"])
    return TrainExpertConfig(**d)


RESUME_KEYS = ("task", "axis", "sphere_share", "translate_min", "translate_max", "translate_tolerance", "envs",
               "seed", "objects", "object_weights", "wrist", "hand", "grasp_dir", "gravity", "shape_obs",
               "action_scale", "episode_seconds")  # fmt: skip
"""Settings a resumed run must share with its checkpoint."""
_DEFAULTS = {f.name: f.default for f in fields(TrainExpertConfig)} | {"gravity": asdict(GravityCurriculum())}


def make_env(cfg: TrainExpertConfig, *, num_envs: int | None = None, seed: int | None = None) -> HandEnv:
    """The environment an expert of ``cfg`` trains and runs in."""
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r}; expected one of {', '.join(TASKS)}")
    if cfg.sphere_share and cfg.task != "rotate":
        raise ValueError("--sphere-share draws rotation axes: it needs --task rotate")
    if cfg.task == "rotate":
        task_config = RotateConfig(axes=cfg.axis, sphere_share=cfg.sphere_share, scales=reward_scales(cfg))
    elif cfg.task == "translate":
        task_config = replace(translate_config(cfg), scales=reward_scales(cfg))
    else:
        task_config = TASKS[cfg.task][1](scales=reward_scales(cfg))
    env_cfg = EnvConfig(
        num_envs=cfg.envs if num_envs is None else num_envs,
        task=cfg.task,
        objects=cfg.objects,
        object_weights=cfg.object_weights,
        wrist=cfg.wrist,
        hand=cfg.hand,
        grasp_dir=cfg.grasp_dir,
        shape_obs=cfg.shape_obs,
        episode_seconds=cfg.episode_seconds,
        action_mode="relative",
        action_scale=cfg.action_scale,
        num_threads=cfg.threads,
        seed=cfg.seed if seed is None else seed,
    )
    return HandEnv(env_cfg, task_config=task_config)


def translate_config(cfg: TrainExpertConfig) -> TranslateConfig:
    """The translation task's config of ``cfg`` (its directions from ``axis`` when the task is translate; the
    distances are checked whatever the task), default reward scales; a one-line ValueError for a bad value."""
    return TranslateConfig(axes=cfg.axis if cfg.task == "translate" else "all", min_distance=cfg.translate_min,
                           max_distance=cfg.translate_max, tolerance=cfg.translate_tolerance)  # fmt: skip


def _active(scales: dict[str, float]) -> dict[str, float]:
    """The reward terms that count (nonzero scales)."""
    return {k: v for k, v in scales.items() if v != 0}


def reward_scales(cfg: TrainExpertConfig) -> dict[str, float]:
    """The reward scales an expert of ``cfg`` trains with: its task's defaults with ``cfg.reward``'s overrides."""
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r}; expected one of {', '.join(TASKS)}")
    scales = dict(TASKS[cfg.task][1]().scales)
    scales.update(parse_name_values(cfg.reward, allowed=scales, convert=finite_float, what="reward override",
                                    form="finite number"))  # fmt: skip
    return scales


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device cuda requested but torch sees no GPU")
    return device


def build_ppo(vec_env: RslVecEnv, ppo: PPOConfig, device: str):
    """rsl-rl's PPO with our actor and critic settings."""
    from rsl_rl.algorithms import PPO

    with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints the networks
        return PPO.construct_algorithm(vec_env.get_observations().to(device), vec_env, ppo.to_rsl(), device)


def _segment_seed(seed: int, iteration: int) -> int:
    return int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0])


def _atomic_torch_save(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: Path) -> dict:
    """Read a training checkpoint; a CheckpointError with a one-line reason otherwise."""
    return read_torch_checkpoint(path, keys=("alg", "config"), kind="dexgen expert", error=CheckpointError)


def train_expert(cfg: TrainExpertConfig, *, progress: bool = True) -> dict:
    """Train (or resume) an expert; returns a summary with the run directory and final statistics. Its
    ``env_steps`` and ``wall_s`` count the whole lineage (a resumed run's earlier segments, the actor it started
    from), as the shipped record does; ``run_env_steps`` and ``run_wall_s`` count this call alone."""
    threads = torch.get_num_threads()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    try:
        return _train_expert(cfg, progress=progress)
    finally:
        torch.set_num_threads(threads)


def _train_expert(cfg: TrainExpertConfig, *, progress: bool) -> dict:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    device = resolve_device(cfg.device)
    run_dir = Path(cfg.out) / cfg.name
    last = run_dir / "last.pt"
    start_it, env_steps, wall = 0, 0, 0.0
    ckpt = None
    if cfg.resume:
        ckpt = load_checkpoint(last)
        saved, given = ckpt["config"], _config_dict(cfg)
        for key in RESUME_KEYS:
            mine = saved.get(key, _DEFAULTS[key])  # runs from before an option have its default
            if mine != given[key]:
                raise CheckpointError(f"cannot resume {last}: it was trained with {key}={mine!r}")
        if saved["ppo"] != asdict(cfg.ppo) | {"actor_hidden": list(cfg.ppo.actor_hidden),
                                              "critic_hidden": list(cfg.ppo.critic_hidden)}:  # fmt: skip
            raise CheckpointError(f"cannot resume {last}: its PPO settings differ from the ones given")
        scales = reward_scales(cfg)
        if _active(ckpt.get("reward_scales", scales)) != _active(scales):  # a term added since, at 0, is no change
            raise CheckpointError(f"cannot resume {last}: it was trained with reward scales {ckpt['reward_scales']}")
        start_it, env_steps, wall = ckpt["iteration"], ckpt["env_steps"], ckpt["wall_s"]
    elif last.exists():
        raise CheckpointError(f"{run_dir} already holds a run; pass --resume to continue it or choose --run-name")
    if cfg.init_from and cfg.init_actor:
        raise ValueError("give --init-from (a training checkpoint) or --init-actor (an exported expert), not both")
    if cfg.action_std is not None and not (cfg.init_from or cfg.init_actor):
        raise ValueError("--action-std sets a trained actor's noise: give --init-actor or --init-from with it")
    if cfg.action_std is not None and not (np.isfinite(cfg.action_std) and cfg.action_std > 0):
        raise ValueError(f"--action-std must be a positive number, got {cfg.action_std}")
    source = None
    if cfg.init_actor and ckpt is None:
        source = _expert_source(cfg)
        env_steps, wall = source["env_steps"], source["wall_s"]
    if cfg.init_from and ckpt is None:
        source = load_checkpoint(Path(cfg.init_from))
        for key in ("task", "seed", "objects", "action_scale", "shape_obs"):
            theirs = source["config"].get(key, _DEFAULTS[key])
            if theirs != getattr(cfg, key):
                raise CheckpointError(f"cannot start from {cfg.init_from}: it was trained with {key}={theirs!r}")
        env_steps, wall = source["env_steps"], source["wall_s"]
    if start_it >= cfg.iterations:
        return {"run_dir": str(run_dir), "iterations": start_it, "env_steps": env_steps, "wall_s": wall,
                "run_env_steps": 0, "run_wall_s": 0.0}  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(_config_dict(cfg), indent=2))

    # provenance of the run as started (a resumed run keeps its original command and revision)
    this_command = "dexgen " + " ".join(sys.argv[1:])
    command = ckpt["command"] if ckpt is not None else this_command
    code_revision = ckpt["revision"] if ckpt is not None else revision()
    # every process that trained the run, in order: where each segment ran and from which code
    prior = ckpt if ckpt is not None else source
    history = list(prior.get("history", [])) if prior is not None else []
    if prior is not None and not history:
        history = [{"command": prior["command"], "revision": prior["revision"], "from_iteration": 0,
                    "to_iteration": prior["iteration"]}]  # fmt: skip
    if source is not None:
        command, code_revision = this_command, revision()
    history.append({"command": this_command, "revision": revision(), "device": device,
                    "threads": cfg.threads or os.cpu_count(), "cpus": os.cpu_count(),
                    "from_iteration": start_it, "to_iteration": start_it,
                    **({"init_from": cfg.init_from or cfg.init_actor} if source is not None else {})})  # fmt: skip
    torch.manual_seed(cfg.seed)
    env = make_env(cfg)
    vec_env = RslVecEnv(env, device=device)
    alg = build_ppo(vec_env, cfg.ppo, device)
    if ckpt is not None:
        alg.load(ckpt["alg"], None, strict=True)
    elif source is not None:
        try:
            if "actor_state" in source:
                alg.actor.load_state_dict(source["actor_state"], strict=True)
            else:
                alg.load(source["alg"], {"actor": True, "critic": True}, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"cannot start from {cfg.init_from or cfg.init_actor}: its networks do not match "
                                  f"({str(e).strip().splitlines()[0]})") from None  # fmt: skip
        if cfg.action_std is not None:
            _set_action_std(alg, cfg.action_std)
    writer = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=start_it)
    gravity = ckpt.get("gravity_scale", cfg.gravity.start) if ckpt is not None else cfg.gravity.start
    gravity_drops = list(ckpt.get("gravity_drops", [])) if ckpt is not None else []
    if gravity != 1.0:
        env.set_gravity_scale(gravity)

    stats: dict[str, float] = {}
    bar = tqdm(total=cfg.iterations, initial=start_it, desc=cfg.name, disable=not progress, unit="it")
    it = start_it
    t0 = time.perf_counter() - wall
    t_process, t_segment, segment_s = time.perf_counter(), time.perf_counter(), 0.0
    object_names, env_object = np.unique([o.name for o in env.env_objects], return_inverse=True)
    envs_per_object = np.bincount(env_object)
    object_drops, segment_steps = np.zeros(len(object_names)), 0  # since the last checkpoint
    steps_before = env_steps
    while it < cfg.iterations:
        if it % cfg.save_interval == 0:  # segment start: re-seed everything (see module docstring)
            s = _segment_seed(cfg.seed, it)
            torch.manual_seed(s)
            env.rng = np.random.default_rng(s)
            env.reset()
        obs = vec_env.get_observations().to(device)
        alg.train_mode()
        ep_terms: dict[str, list[float]] = {}
        rewards, drops, dones_n = [], 0, 0
        t_collect = time.perf_counter()
        with torch.inference_mode():
            for _ in range(cfg.ppo.steps_per_env):
                actions = alg.act(obs)
                obs, rew, dones, extras = vec_env.step(actions)
                obs, rew, dones = obs.to(device), rew.to(device), dones.to(device)
                alg.process_env_step(obs, rew, dones, extras)
                rewards.append(float(rew.mean()))
                drops += int(extras["dropped"].sum())
                object_drops += np.bincount(env_object, weights=extras["dropped"], minlength=len(object_names))
                segment_steps += 1
                dones_n += int(dones.sum())
                for k, v in extras["log"].items():
                    ep_terms.setdefault(k, []).append(v)
            alg.compute_returns(obs)
        collect_s = time.perf_counter() - t_collect
        t_learn = time.perf_counter()
        with _critic_only(alg) if it < cfg.critic_warmup else contextlib.nullcontext():
            losses = alg.update()
        learn_s = time.perf_counter() - t_learn
        it += 1
        env_steps += cfg.envs * cfg.ppo.steps_per_env

        drops_per_1k = 1000.0 * drops / (cfg.envs * cfg.ppo.steps_per_env)
        gravity_drops = [*gravity_drops, drops_per_1k][-cfg.gravity.min_iterations :]
        raised = cfg.gravity.next_scale(gravity, gravity_drops)
        if raised != gravity:  # takes effect from the next iteration; the checkpoint carries it (exact resume)
            gravity, gravity_drops = raised, []
            env.set_gravity_scale(gravity)
        stats = {
            "reward_per_step": float(np.mean(rewards)),
            "drops_per_1k_steps": drops_per_1k,
            "gravity_scale": gravity,
            "env_steps_per_s": cfg.envs * cfg.ppo.steps_per_env / (collect_s + learn_s),
            "collect_s": collect_s,
            "learn_s": learn_s,
            "learning_rate": float(alg.learning_rate),
            "action_std": float(alg.get_policy().output_std.mean().detach()),
            **{f"loss/{k}": float(v) for k, v in losses.items()},
            **{f"terms{k[len('/terms'):]}" if k.startswith("/terms") else k.lstrip("/"): float(np.mean(v))
               for k, v in ep_terms.items()},
        }  # fmt: skip
        for k, v in stats.items():
            writer.add_scalar(k, v, it)
        bar.update(1)
        bar.set_postfix(
            rew=f"{stats['reward_per_step']:.3f}",
            drops=f"{stats['drops_per_1k_steps']:.1f}",
            sps=f"{stats['env_steps_per_s']:.0f}",
            **({"rot": f"{stats['terms/rotate']:.3f}"} if "terms/rotate" in stats else {}),
            **({"g": f"{gravity:.2f}"} if cfg.gravity.start < 1.0 else {}),
        )
        if it % cfg.save_interval == 0 or it == cfg.iterations:
            wall = time.perf_counter() - t0
            # one iteration holds about one drop per object: per-object rates are read over a whole segment
            for name, d, n in zip(object_names, object_drops, envs_per_object * segment_steps):
                stats[f"object_drops_per_1k_steps/{name}"] = float(1000.0 * d / n)
                writer.add_scalar(f"object_drops_per_1k_steps/{name}", stats[f"object_drops_per_1k_steps/{name}"], it)
            object_drops[:], segment_steps = 0.0, 0
            history[-1]["to_iteration"] = it
            _atomic_torch_save(
                {"alg": alg.save(), "iteration": it, "env_steps": env_steps, "wall_s": wall,
                 "config": _config_dict(cfg), "stats": stats, "command": command, "revision": code_revision,
                 "reward_scales": env.task.scales, "history": history, "gravity_scale": gravity,
                 "gravity_drops": gravity_drops},
                last,
            )  # fmt: skip
            writer.flush()
            now = time.perf_counter()
            segment_s, t_segment = max(segment_s, now - t_segment), now
            if cfg.max_minutes > 0 and now - t_process + segment_s > 60.0 * cfg.max_minutes:
                break
    bar.close()
    writer.close()
    return {"run_dir": str(run_dir), "iterations": it, "env_steps": env_steps, "wall_s": round(wall, 1),
            "run_env_steps": env_steps - steps_before, "run_wall_s": round(time.perf_counter() - t_process, 3),
            **stats}  # fmt: skip


def _expert_source(cfg: TrainExpertConfig) -> dict:
    """What a run started from an exported expert takes from it: the actor's state, the steps, time and history
    (as a training checkpoint's would be), after checking that the expert fits ``cfg``."""
    try:
        record, arrays = read_expert_files(cfg.init_actor)
    except ExpertError as e:
        raise CheckpointError(f"cannot start from {cfg.init_actor}: {e}") from None
    env_cfg, ppo = record.get("env", {}), record.get("ppo", {})
    for key in ("task", "seed", "objects", "action_scale", "shape_obs"):
        theirs = env_cfg.get(key, _DEFAULTS[key])
        if theirs != getattr(cfg, key):
            raise CheckpointError(f"cannot start from {cfg.init_actor}: it was trained with {key}={theirs!r}")
    for key in ("actor_hidden", "activation", "actor_privileged"):
        mine = getattr(cfg.ppo, key)
        if key in ppo and ppo[key] != (list(mine) if isinstance(mine, tuple) else mine):
            raise CheckpointError(f"cannot start from {cfg.init_actor}: its networks do not match ({key}={ppo[key]!r})")
    return {"actor_state": {k: torch.from_numpy(v) for k, v in arrays.items()},
            "env_steps": int(record.get("env_steps", 0)), "wall_s": float(record.get("wall_s", 0.0)),
            "command": record.get("command", ""), "revision": record.get("revision", "unknown"),
            "iteration": int(record.get("iterations", 0)), "history": record.get("training_history", [])}  # fmt: skip


def _set_action_std(alg, std: float) -> None:
    """Set the actor's action noise to ``std`` on every joint (rsl-rl's scalar or log parameterization)."""
    dist = alg.actor.distribution
    with torch.no_grad():
        if hasattr(dist, "std_param"):
            dist.std_param.fill_(std)
        else:
            dist.log_std_param.fill_(float(np.log(std)))


@contextlib.contextmanager
def _critic_only(alg):
    """An update that fits the critic alone: the actor's parameters get no gradient (so its KL is 0 and rsl-rl
    leaves the learning rate alone), and the value loss is not clipped to the untrained critic's old values (which
    would slow its fit to a step of clip_param per update)."""
    params = list(alg.actor.parameters())
    flags = [p.requires_grad for p in params]
    clipped = alg.use_clipped_value_loss
    for p in params:
        p.requires_grad_(False)
    alg.use_clipped_value_loss = False
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
        alg.use_clipped_value_loss = clipped


def _config_dict(cfg: TrainExpertConfig) -> dict:
    d = asdict(cfg)
    d["ppo"]["actor_hidden"] = list(cfg.ppo.actor_hidden)
    d["ppo"]["critic_hidden"] = list(cfg.ppo.critic_hidden)
    return d

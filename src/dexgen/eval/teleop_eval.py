"""``dexgen eval``: does guided DexGen turn coarse, unsafe commands into safe motion that keeps their intent?

For every commanded rotation axis x seed, the RL expert of that axis is run first from seeded initial states on the
chosen objects (one episode per simulation); its fingertip trajectory is the reference of the corrupted-expert
command sources. Then, from the same initial states, for every command source, each method runs for the horizon:

- ``raw``: raw teleoperation, damped least-squares IK of the command's first step (``dexgen.teleop.ik``);
- ``unguided``: the DexGen controller with α = 0 (ignores the command);
- ``guided``: the DexGen controller guided toward the command with strength ``alpha``;
- ``expert``: the RL expert of the commanded axis (privileged state; an upper bound, ignores the command).

Per episode: holding time (until the object drops, capped at the horizon), progress (mean angular velocity of the
object about the commanded axis while held, rad/s, signed) and command following (``metrics.follow_error``, mm).
Medians with bootstrap 95 % intervals per method, per source and overall; a sweep of the guidance strength gives the
holding-vs-following trade-off. Methods that ignore the command are run once per axis and seed, and each source's
commands are computed afterwards from their recorded fingertips (the same random draws as when run live). This
module runs the suites; ``teleop_report`` summarizes them and writes the tables, plots and video.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dexgen.checks import check_int, check_number, parse_floats, parse_ints
from dexgen.controller.dexgen_controller import (
    GUIDED_ALPHA,
    GUIDED_CANDIDATES,
    GUIDED_COMMAND_GAIN,
    GUIDED_RIGID_ALPHA_SCALE,
    GUIDED_TRANSLATION_WEIGHT,
    ControllerConfig,
    DexGenController,
    check_controller_settings,
    frame_from_policy_obs,
)
from dexgen.eval.holding_curve import holding_curve_plot
from dexgen.eval.metrics import follow_error
from dexgen.eval.model_eval import targets_to_actions
from dexgen.eval.teleop_report import (
    Episodes,
    all_sources,
    episode_figures,
    markdown_table,
    side_by_side_video,
    summarize,
    sweep_episode_figures,
    sweep_plot,
)
from dexgen.model.checkpoint import load_model, model_wrists, shipped_model_path
from dexgen.model.dexgen_model import DexGenModel
from dexgen.rl.evaluate import expert_env
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.sim.env import HandEnv
from dexgen.sim.hand import check_wrist
from dexgen.sim.objects import resolve_objects
from dexgen.sim.rollout import Rollout, rollout
from dexgen.strict_json import dumps
from dexgen.teleop.commands import (
    CommandSource,
    CorruptedExpert,
    KinematicIntent,
    ReplayCommand,
    corruption,
    episode_ends,
    parse_axis,
)
from dexgen.teleop.operators import FAMILIES, HumanOpenLoop, check_seeds

METHODS = ("raw", "unguided", "guided", "expert")
ALPHA = GUIDED_ALPHA
"""The guided method's default guidance strength (``dexgen.controller.dexgen_controller.GUIDED_ALPHA``)."""
RIGID_ALPHA_SCALE = GUIDED_RIGID_ALPHA_SCALE
"""The guided method's multiplier of α for rigid commands (``GUIDED_RIGID_ALPHA_SCALE``, same module)."""
SUITES = {
    "quick": {"wrist": "palm_down", "objects": "heldout", "axes": "+z,-z", "sources": "kinematic,corrupted:mixed",
              "seeds": "1,2,3", "episodes": 1, "seconds": 10.0, "sweep": "0,0.45,1", "candidates": GUIDED_CANDIDATES},
    "full": {"wrist": "palm_down", "objects": "heldout", "axes": "+z,-z",
             "sources": "kinematic,corrupted:clean,corrupted:noisy,corrupted:biased,corrupted:lagged,"
                        "corrupted:scaled,corrupted:frozen_thumb,corrupted:mixed",
             "seeds": "1,2,3", "episodes": 1, "seconds": 30.0, "sweep": "0,0.45,1", "candidates": GUIDED_CANDIDATES},
    # goal-reaching with closed-loop simulated operators (dexgen.eval.operator_eval)
    "operator-quick": {"wrist": "palm_down", "objects": "heldout", "goals": "+z:45,-z:45,+z:90,-z:90",
                       "operators": "dev", "goal_rule": "turn", "seeds": "1,2", "episodes": 1, "seconds": 10.0,
                       "axes": "", "sources": "", "sweep": "", "candidates": GUIDED_CANDIDATES},
    "operator": {"wrist": "palm_down", "objects": "heldout", "goals": "+z:45,+z:90,+z:135,-z:45,-z:90,-z:135",
                 "operators": "dev", "goal_rule": "turn", "seeds": "1,2,3,4,5,6,7,8,9,10", "episodes": 1,
                 "seconds": 15.0, "axes": "", "sources": "", "sweep": "", "candidates": GUIDED_CANDIDATES},
}  # fmt: skip
"""Suite defaults; any of them can be overridden by the flag of the same name."""
OPERATOR_SUITES = ("operator-quick", "operator")
"""The goal-reaching suites (closed-loop simulated operators; ``dexgen.eval.operator_eval``)."""


@dataclass
class EvalConfig:
    """Evaluate teleoperation assistance: raw teleop vs DexGen unguided vs DexGen guided vs the RL expert."""

    suite: str = "quick"
    """quick (under 5 minutes here) or full (the reference run); operator-quick (under 5 minutes) or operator (the
    reference, under 30): goal-reaching with closed-loop simulated operators. The flags below override its
    settings."""
    checkpoint: str | None = None
    """Model weights; None: the shipped model of the wrist orientation."""
    objects: str | None = None
    """Object set or names (suite default: heldout)."""
    axes: str | None = None
    """Commanded rotation axes, comma-separated (each needs a shipped expert)."""
    sources: str | None = None
    """Command sources: kinematic (rigid rotation at --omega), corrupted:<preset>, replay:<file.npz> (a
    recording, e.g. from dexgen teleop --record; see dexgen.teleop.commands) and human:<family> (a simulated
    operator's open-loop turn at --omega: pauses, reversal, tilted or retarget; see dexgen.teleop.operators)."""
    seeds: str | None = None
    """Comma-separated seeds (initial grasps, physics, observation noise, command corruption, sampling)."""
    episodes: int | None = None
    """Episodes per object per axis and seed."""
    seconds: float | None = None
    """Horizon, seconds."""
    wrist: str | None = None
    """Wrist orientation (palm_up, palm_down, sideways; suite default: palm_down): picks the shipped experts (and,
    without --checkpoint, the shipped model) of that orientation."""
    goals: str | None = None
    """Operator suites: goals, comma-separated <axis>:<degrees> (e.g. +z:90,-z:45), turns from the starting
    orientation; each axis needs a shipped rotation expert of the wrist."""
    operators: str | None = None
    """Simulated operators (operator suites and human:<family> sources): dev (to develop on; seeds < 1000) or
    confirm (to decide on; seeds >= 1000). None: dev."""
    goal_rule: str | None = None
    """Operator suites: turn (success counts the turn about the goal's axis) or orientation (the whole orientation,
    tilt included); see dexgen.eval.operator_eval."""
    alpha: float = ALPHA
    """Guidance strength of the guided method."""
    rigid_alpha_scale: float = RIGID_ALPHA_SCALE
    """Multiplier of the guided method's α for a command read as a rigid turn (e.g. kinematic intent; see
    ``dexgen.controller.ControllerConfig``); the sweep scales it with α. 1: every command guided alike."""
    rigid_follow_weight: float = 0.0
    """Guided method, best of candidates: for a command read as a rigid turn, rank plans by the intended-rotation
    miss plus this weight times the plan's stray from the command, each relative to the hand's candidates' mean
    (see ``dexgen.controller.ControllerConfig.rigid_follow_weight``; 0: by the rotation alone)."""
    command_component: str = "full"
    """What the guided method matches: full (every fingertip displacement of the command, the paper's distance)
    or rigid (only the fingertips' rigid motion; see dexgen.controller.guidance)."""
    candidates: int | None = None
    """Plans the guided method samples per decision, keeping the one whose predicted object rotation is closest to
    the command's intent (1: just one; suite default: 8; needs a model with a rotation predictor)."""
    intent: str = "auto"
    """How best-of-candidates reads the command's intended object rotation: rigid (the rigid turn of its
    fingertips), predicted (the model's rotation predictor applied to the command), or auto (rigid for a command
    whose fingertips move almost rigidly, predicted for the others)."""
    ranking: str = "closest"
    """How best-of-candidates compares a plan's predicted rotation with the intended one: closest (the nearest) or
    onward (turning further than asked along the intended axis is not penalized)."""
    intent_smoothing: float = 0.0
    """Memory of the guided method's intent readings through the rotation predictor across decisions (the decay
    per decision of their weighted mean, in [0, 1); 0: each decision reads the command afresh; see
    ``ControllerConfig.intent_smoothing``)."""
    mode_min_speed: float = 0.1
    """With mode_from_intent: the least intended rotation along a primitive's axis, rad/s, for the guided method to
    give the denoiser that primitive (the unknown mode below it; see ``ControllerConfig.mode_min_speed``)."""
    mode_scale: float = 1.0
    """With mode_from_intent: classifier-free guidance on the guided method's mode input (1: off; above 1 makes
    its plans more of the chosen primitive; see ``ControllerConfig.mode_scale``)."""
    command_gain: float = GUIDED_COMMAND_GAIN
    """Factor on the command's fingertip motion in the guided method (motion scaling; following error is still
    measured against the command as given; see ``ControllerConfig.command_gain``; default the evaluated method's,
    ``GUIDED_COMMAND_GAIN``)."""
    translation_weight: float = GUIDED_TRANSLATION_WEIGHT
    """Factor on the common translation of the command's fingertips in the guided method (1: as given, 0: removed;
    see ``ControllerConfig.translation_weight``; default the evaluated method's, ``GUIDED_TRANSLATION_WEIGHT``)."""
    risk_threshold: float | None = None
    """Guided method, for a model with a drop-risk critic (``dexgen train-risk``): decide as a hold, ignoring the
    command, where the critic's probability of a drop within its window exceeds this (see
    ``ControllerConfig.risk_threshold``; None: off)."""
    rotation_weight: float = 0.0
    """Strength of the guided method's rotation guidance (an extra term: turn the object as the command's
    fingertips would turn a rigid body, through the model's rotation predictor; 0: off)."""
    consistency: float = 0.0
    """Strength of the guided method's plan-consistency guidance (an extra term: each new plan is pulled toward the
    rest of the plan being followed, so a gait is carried through; 0: off)."""
    mode_from_intent: bool | None = None
    """Guided method, for a model trained with a mode input and mode dropout: give the denoiser the rotation
    primitive (of those in the suite's axes) that the command's intended rotation (read as ``intent``) means,
    and the unknown mode when it means none (unguided always samples with the unknown mode). None: on for such a
    model, off for others."""
    sweep: str | None = None
    """Guidance strengths of the sweep (comma-separated; empty: no sweep)."""
    omega: float = 0.5
    """Angular speed of the kinematic-intent command, rad/s."""
    num_inference_steps: int | None = None
    """DDIM steps of the controller; None: the model's default."""
    replan_every: int = 1
    """Controllers sample a new plan every this many steps (1: every step; more: chunking)."""
    workspace_radius: float = 0.0
    """Extra guidance of the guided method keeping fingertips within this radius of the grasp centre, m (0: off)."""
    joint_limit_margin: float | None = None
    """Extra guidance of the guided method keeping its joint targets this many radians inside the joint limits
    (None: off)."""
    partial_noise_step: int | None = None
    """Also run the partial-noise ablation ("partial": the command diffused forward to this sampler step, then
    denoised without guidance). None: not run."""
    out: str = "outputs/eval"
    """Directory of the JSON, Markdown table, sweep plot and video."""
    video: bool = False
    """Render the first case's first episode, raw teleop (left) and guided (right) side by side."""
    threads: int = 0
    """Simulation and PyTorch threads; 0 uses every core."""
    json: bool = False
    """Print one JSON object (the summary) instead of the table."""

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; expected one of {', '.join(SUITES)}")
        check_controller_settings(self)
        if self.objects is not None:
            resolve_objects(self.objects)
        for axis in _names(self.axes):
            parse_axis(axis)
        goals = self.suite in OPERATOR_SUITES  # their goals name the axes, their operators the commands
        if self.axes is not None and not _names(self.axes) and not goals:
            raise ValueError("axes: none given")
        for name in _names(self.sources):
            check_source_name(name)
        if self.sources is not None and not _names(self.sources) and not goals:
            raise ValueError("sources: none given")
        if self.seeds is not None and not parse_ints("seeds", self.seeds):
            raise ValueError("seeds: none given")
        check_int("episodes", self.episodes, ge=1, optional=True)
        check_number("seconds", self.seconds, gt=0, optional=True)
        check_wrist("wrist", self.wrist, optional=True)
        parse_floats("sweep", self.sweep, ge=0)
        check_number("omega", self.omega)
        check_int("threads", self.threads, ge=0)

    def resolved(self) -> EvalConfig:
        """The config with the suite's defaults filled in."""
        if self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; expected one of {', '.join(SUITES)}")
        fill = {k: v for k, v in SUITES[self.suite].items() if getattr(self, k) is None}
        return replace(self, **fill)


def guided_config(cfg: EvalConfig, *, alpha: float, seed: int) -> ControllerConfig:
    """The guided method's controller config for the (resolved, see ``for_model``) evaluation config ``cfg`` at
    guidance strength ``alpha``."""
    return ControllerConfig(alpha=alpha, rigid_alpha_scale=cfg.rigid_alpha_scale,
                            rigid_follow_weight=cfg.rigid_follow_weight, seed=seed,
                            num_inference_steps=cfg.num_inference_steps, replan_every=cfg.replan_every,
                            command_component=cfg.command_component, rotation_weight=cfg.rotation_weight,
                            candidates=cfg.candidates, intent=cfg.intent, ranking=cfg.ranking,
                            intent_smoothing=cfg.intent_smoothing, consistency=cfg.consistency,
                            workspace_radius=cfg.workspace_radius, joint_limit_margin=cfg.joint_limit_margin,
                            mode_from_intent=bool(cfg.mode_from_intent), mode_min_speed=cfg.mode_min_speed,
                            mode_scale=cfg.mode_scale, command_gain=cfg.command_gain,
                            translation_weight=cfg.translation_weight,
                            risk_threshold=cfg.risk_threshold)  # fmt: skip


def for_model(cfg: EvalConfig, model: DexGenModel, path: str | Path) -> EvalConfig:
    """``cfg`` resolved (the suite's defaults filled in) and adapted to the model at ``path``: one plan per decision
    for a model without a rotation predictor (an error if --candidates asked for more), mode_from_intent on for a
    model with an unknown mode (an error if asked for with a model without)."""
    explicit_candidates = cfg.candidates is not None
    cfg = cfg.resolved()
    if cfg.candidates > 1 and model.rotation is None:
        if explicit_candidates:
            raise ValueError(f"--candidates {cfg.candidates} needs a model with a rotation predictor; {path} has none")
        cfg = replace(cfg, candidates=1)  # a model from before the rotation predictor: one plan per decision
    if cfg.risk_threshold is not None and model.risk is None:
        raise ValueError(f"--risk-threshold needs a model with a drop-risk critic (dexgen train-risk); {path} has none")
    if cfg.mode_from_intent is None:
        cfg = replace(cfg, mode_from_intent=model.cfg.unknown_mode is not None)
    elif cfg.mode_from_intent and model.cfg.unknown_mode is None:
        raise ValueError(f"--mode-from-intent needs a model trained with mode dropout; {path} has none")
    return cfg


def _names(spec: str | None) -> list[str]:
    """The comma-separated entries of ``spec`` (None: none), stripped."""
    return [s.strip() for s in str(spec or "").split(",") if s.strip()]


def check_source_name(name: str) -> None:
    """A ValueError unless ``name`` is a command source ``make_source`` knows: kinematic, corrupted:<preset> (a name
    of ``dexgen.teleop.commands.PRESETS``), replay:<file.npz> (its file is read by ``check_sources``) or
    human:<family> (a name of ``dexgen.teleop.operators.FAMILIES``)."""
    if name == "kinematic" or name.startswith("replay:"):
        return
    if name.startswith("corrupted:"):
        corruption(name.split(":", 1)[1])
        return
    if name.startswith("human:"):
        family = name.split(":", 1)[1]
        if family not in FAMILIES:
            raise ValueError(f"unknown human-like family {family!r} in {name}; expected one of {', '.join(FAMILIES)}")
        return
    raise ValueError(f"unknown command source {name!r}; expected kinematic, corrupted:<preset>, replay:<file.npz> "
                     f"or human:<family>")  # fmt: skip


def check_sources(spec: str) -> None:
    """Check every command source of ``spec`` (comma-separated) before any rollout: the names, and each replay
    recording read in full (a one-line ValueError naming the file and its problem)."""
    for name in _names(spec):
        check_source_name(name)
        if name.startswith("replay:"):
            ReplayCommand(name.split(":", 1)[1], name=name)


def make_source(name: str, axis: str, omega: float, ref: Rollout, *, operators: str | None = None,
                seconds: float = 60.0) -> CommandSource:  # fmt: skip
    """The command source named ``name`` (kinematic, corrupted:<preset>, replay:<file.npz>, human:<family>) for
    commanded ``axis``; ``ref``: the expert's recorded rollout (with tips) the corrupted sources corrupt;
    ``operators`` (None: dev) and ``seconds`` (the horizon): the human-like families' population and length."""
    if name == "kinematic":
        return KinematicIntent(axis, omega, name="kinematic")
    if name.startswith("corrupted:"):
        return CorruptedExpert(ref.tips, episode_ends(ref.hold_steps), config=name.split(":", 1)[1], name=name)
    if name.startswith("replay:"):
        return ReplayCommand(name.split(":", 1)[1], name=name)
    if name.startswith("human:"):
        return HumanOpenLoop(name.split(":", 1)[1], axis, omega, operators=operators or "dev", seconds=seconds + 1.0,
                             name=name)  # fmt: skip
    raise ValueError(f"unknown command source {name!r}; expected kinematic, corrupted:<preset>, replay:<file.npz> "
                     f"or human:<family>")  # fmt: skip


def _source(cfg: EvalConfig, name: str, axis: str, ref: Rollout) -> CommandSource:
    return make_source(name, axis, cfg.omega, ref, operators=cfg.operators, seconds=cfg.seconds)


def check_human_sources(cfg: EvalConfig) -> None:
    """A one-line ValueError, before any rollout, for a human:<family> source of an unknown family, an unknown
    operator set, or seeds of the other operator set."""
    families = [s.strip().split(":", 1)[1] for s in str(cfg.sources or "").split(",") if s.strip().startswith("human:")]
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"unknown human-like family {family!r} in human:{family}; expected one of "
                             f"{', '.join(FAMILIES)}")  # fmt: skip
    if families or cfg.operators is not None:
        check_seeds(cfg.operators or "dev", [int(s) for s in str(cfg.seeds).split(",") if s.strip()])


def raw_teleop(ik):
    """The raw-teleoperation method's ``act(frame, command)``: IK (``ik``, a ``FingertipIK``) of the command's first
    step from the observed joint positions and fingertips of the controller frame (N, 44)."""

    def act(frame: np.ndarray, cmd: np.ndarray) -> np.ndarray:
        tips = frame[:, 32:44].reshape(-1, 4, 3).astype(np.float64)
        return ik.solve_batch(frame[:, :16].astype(np.float64), tips + cmd[:, 0])

    return act


def _commands_afterwards(source: CommandSource, tips: np.ndarray, seed: int) -> np.ndarray:
    """The commands (S, N, T, 4, 3) the source gives along a recorded trajectory tips (S + 1, N, 4, 3)."""
    source.reset(tips[0], rng=seed)
    return np.stack([source.command(t, tips[t]) for t in range(tips.shape[0] - 1)])


class LiveCommandPolicy:
    """A ``rollout`` policy: asks ``source`` for a command every step, turns it into joint targets with
    ``act(frame, command)`` (a controller's or the IK baseline's) and records the commands in ``commands``
    (one (N, T, 4, 3) array per step, metres, palm frame)."""

    def __init__(self, env: HandEnv, source: CommandSource, seed: int, act):
        self.env, self.source, self.act = env, source, act
        source.reset(env.fingertips(), rng=seed)
        self.commands: list[np.ndarray] = []

    def __call__(self, obs, t):
        cmd = self.source.command(t, self.env.fingertips())
        self.commands.append(cmd)
        return targets_to_actions(self.env, self.act(frame_from_policy_obs(obs["policy"]), cmd))


def _figures(r: Rollout, commands: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    held = np.where(r.dropped, r.hold_steps, commands.shape[0])
    return r.hold_s, r.rate_about(axis), 1000.0 * follow_error(r.tips, commands, held)


def run_suite(model: DexGenModel, cfg: EvalConfig, *, progress: bool = True) -> dict:
    """Run the evaluation ``cfg`` (resolved) with ``model``; returns the results (see ``write_report``)."""
    from tqdm import tqdm

    from dexgen.teleop.ik import FingertipIK

    axes, sources = _names(cfg.axes), _names(cfg.sources)
    seeds, sweep = parse_ints("seeds", cfg.seeds), parse_floats("sweep", cfg.sweep, ge=0)
    check_sources(cfg.sources)
    alphas = sorted({a for a in sweep if a > 0} | {cfg.alpha})
    experts = {a: Expert.load(shipped_expert_path("rotate", a, cfg.wrist), task="rotate", axis=a, wrist=cfg.wrist)
               for a in axes}  # fmt: skip
    ik = FingertipIK()
    methods = list(METHODS) + (["partial"] if cfg.partial_noise_step is not None else [])
    results = {s: {m: Episodes([], [], []) for m in methods} for s in sources}
    swept = {s: {a: Episodes([], [], []) for a in alphas} for s in sources}
    frames: dict[str, list] = {}
    hand_objects: list[str] = []
    risk_holds = [0, 0]  # the guided method's decisions made as holds (risk_threshold), and all its decisions
    rejected: dict[str, list[int]] = {}  # per controller method: outputs rejected as not finite, and all outputs
    total = len(axes) * len(seeds) * (2 + len(sources) * (1 + len(alphas) + (len(methods) > len(METHODS))))
    bar = tqdm(total=total, desc="eval", disable=not progress, unit="rollout")
    for axis in axes:
        axis_vec = parse_axis(axis)
        for seed in seeds:

            def env(axis=axis, seed=seed):
                return expert_env(experts[axis], cfg.objects, seed=seed, episodes=cfg.episodes, seconds=cfg.seconds,
                                  threads=cfg.threads, wrist=cfg.wrist)  # fmt: skip

            e = env()
            hand_objects = [o.name for o in e.env_objects]
            ref = rollout(e, lambda obs, _t, x=experts[axis]: x.act(obs), record_tips=True)
            bar.update(1)
            e = env()
            steps = cfg.num_inference_steps
            ctrl = DexGenController(model, config=ControllerConfig(seed=seed, num_inference_steps=steps,
                                                                    replan_every=cfg.replan_every),
                                    batch=e.num_envs)  # fmt: skip
            plain = rollout(e, lambda obs, _t, c=ctrl, en=e: targets_to_actions(
                en, c.act(frame_from_policy_obs(obs["policy"]))), record_tips=True)  # fmt: skip
            _count_rejected(rejected, "unguided", ctrl, f"axis {axis}, seed {seed}")
            bar.update(1)
            for name in sources:
                for method, r in (("expert", ref), ("unguided", plain)):
                    cmds = _commands_afterwards(_source(cfg, name, axis, ref), r.tips, seed)
                    results[name][method].extend(*_figures(r, cmds, axis_vec))
                    if method == "unguided" and 0.0 in sweep:
                        swept[name].setdefault(0.0, Episodes([], [], [])).extend(*_figures(r, cmds, axis_vec))
                first = axis == axes[0] and seed == seeds[0] and name == sources[0] and cfg.video
                # raw teleop: IK of the command's first step from the observed joint positions
                e = env()
                raw = raw_teleop(ik)
                live = LiveCommandPolicy(e, _source(cfg, name, axis, ref), seed, raw)
                r = rollout(e, live, record_tips=True, on_step=_recorder(e, frames, "raw") if first else None)
                results[name]["raw"].extend(*_figures(r, np.stack(live.commands), axis_vec))
                bar.update(1)
                for alpha in alphas:
                    e = env()
                    c = DexGenController(model, config=guided_config(cfg, alpha=alpha, seed=seed), batch=e.num_envs)
                    live = LiveCommandPolicy(e, _source(cfg, name, axis, ref), seed, c.act)
                    video = first and alpha == cfg.alpha
                    r = rollout(e, live, record_tips=True, on_step=_recorder(e, frames, "guided") if video else None)
                    figs = _figures(r, np.stack(live.commands), axis_vec)
                    swept[name][alpha].extend(*figs)
                    where = f"axis {axis}, seed {seed}, source {name}"
                    _count_rejected(rejected, "guided" if alpha == cfg.alpha else f"guided α={alpha:g}", c, where)
                    if alpha == cfg.alpha:
                        results[name]["guided"].extend(*figs)
                        risk_holds[0] += c.held_for_risk
                        risk_holds[1] += c.decisions
                    bar.update(1)
                if "partial" in methods:
                    e = env()
                    ccfg = ControllerConfig(seed=seed, num_inference_steps=steps,
                                            partial_noise_step=cfg.partial_noise_step)  # fmt: skip
                    c = DexGenController(model, config=ccfg, batch=e.num_envs)
                    live = LiveCommandPolicy(e, _source(cfg, name, axis, ref), seed, c.act)
                    r = rollout(e, live, record_tips=True)
                    results[name]["partial"].extend(*_figures(r, np.stack(live.commands), axis_vec))
                    _count_rejected(rejected, "partial", c, f"axis {axis}, seed {seed}, source {name}")
                    bar.update(1)
    bar.close()
    return {"results": results, "swept": swept, "frames": frames, "hand_objects": hand_objects,
            "risk_holds": risk_holds, "rejected": rejected}  # fmt: skip


def _count_rejected(counts: dict[str, list[int]], method: str, ctrl: DexGenController, where: str) -> None:
    """Add a controller's rejected outputs (not finite, replaced by its last safe targets) and all its outputs to
    ``counts[method]``; a ValueError if it rejected every output: the method never acted (the hand froze), and
    its figures would measure a frozen hand, not the method."""
    outputs = len(ctrl.latencies_s) * ctrl.batch
    total = counts.setdefault(method, [0, 0])
    total[0] += ctrl.rejected
    total[1] += outputs
    if outputs and ctrl.rejected == outputs:
        raise ValueError(f"the {method} method never acted ({where}): the controller rejected all {outputs} of its "
                         "outputs as not finite; the model gives no usable joint targets")  # fmt: skip


def _recorder(env: HandEnv, frames: dict, key: str):
    from dexgen.sim.render import SimRenderer

    renderer = SimRenderer(env.sims, sim=0)
    frames[key] = [renderer.frame()]
    alive = [True]

    def on_step(_t: int) -> None:
        alive[0] = alive[0] and env.episode_length[0] > 0
        frames[key].append(renderer.frame() if alive[0] else frames[key][-1])

    return on_step


def write_report(run: dict, cfg: EvalConfig, *, model_wrists: list[str] | None = None,
                 model_sha256: str | None = None) -> dict:  # fmt: skip
    """Write eval.json (the summary, every episode's figures, ``per_episode[source][method]``, and those of every
    swept guidance strength, ``per_episode_sweep[α][source]``), eval.md, holding.png (the share of episodes still
    holding vs time, ``dexgen.eval.holding_curve``), sweep.png (and raw_vs_guided.mp4) into ``cfg.out``; returns
    the summary with the file paths under ``files`` (and the wrist orientations of the model's training data, when
    given). ``model_sha256``: the weights' hash,
    recorded with the settings (``config.model_sha256``) so that runs of different weights never pool."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    config = asdict(cfg) | ({"model_sha256": model_sha256} if model_sha256 is not None else {})
    summary = {"config": config, **summarize(run, suite=cfg.suite, seconds=cfg.seconds)}
    if model_wrists is not None:
        summary["model_wrists"] = model_wrists
    summary["rejected_outputs"] = {m: {"rejected": r, "outputs": n} for m, (r, n) in run.get("rejected", {}).items()}
    if cfg.risk_threshold is not None and run.get("risk_holds", [0, 0])[1] > 0:
        held, decisions = run["risk_holds"]
        summary["guided_held_for_risk_share"] = held / decisions  # of the guided method's decisions, every hand
    files = {"json": str(out / "eval.json"), "table": str(out / "eval.md")}
    if any(len(p) > 1 for p in summary["sweep"].values()):
        files["sweep_plot"] = str(sweep_plot(summary, out / "sweep.png"))
    held = {m: e.hold_s for m, e in all_sources(run["results"]).items()}
    files["holding_plot"] = str(holding_curve_plot(held, out / "holding.png", seconds=cfg.seconds))
    if {"raw", "guided"} <= set(run["frames"]):
        files["video"] = str(side_by_side_video(run["frames"]["raw"], run["frames"]["guided"],
                                                out / "raw_vs_guided.mp4"))  # fmt: skip
    summary["files"] = files
    Path(files["table"]).write_text(markdown_table(summary) + "\n")
    record = {**summary, "per_episode": episode_figures(run["results"]),  # for re-analysis without rerunning
              "per_episode_sweep": sweep_episode_figures(run["swept"])}  # fmt: skip
    Path(files["json"]).write_text(dumps(record, indent=2) + "\n")
    return summary


def weights_sha256(path: str | Path) -> str:
    """The SHA-256 of a weights file, hex: which model a run used, whatever path it was given by."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_for_eval(cfg: EvalConfig) -> tuple[EvalConfig, DexGenModel, str | Path]:
    """Set the thread count, load the model ``cfg`` names (the shipped one of its wrist by default) and fit the
    config to it: (config, model, weights path)."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    wrist = cfg.resolved().wrist
    path = cfg.checkpoint or shipped_model_path(wrist)
    model = load_model(path, wrist=wrist)
    return for_model(cfg, model, path), model, path


def run_eval(cfg: EvalConfig) -> dict:
    """The eval command's teleoperation suites (quick, full; ``dexgen.eval.command`` dispatches the goal-reaching
    ones to ``operator_eval``)."""
    if cfg.suite in OPERATOR_SUITES:
        raise ValueError(f"suite {cfg.suite} is a goal-reaching suite: run it with dexgen.eval.command.run_eval")
    check_human_sources(cfg.resolved())  # before loading anything
    cfg, model, path = load_for_eval(cfg)
    start = time.perf_counter()
    run = run_suite(model, cfg)  # the bar goes to stderr, so --json output stays clean
    summary = write_report(run, cfg, model_wrists=model_wrists(model), model_sha256=weights_sha256(path))
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    if cfg.json:
        return summary
    print(markdown_table(summary))
    keys = (
        "holding_ratio_guided_vs_raw",
        "holding_ratio_ci95",
        "progress_ratio_guided_vs_expert",
        "progress_ratio_ci95",
        "rejected_outputs",
        "files",
        "wall_s",
    )
    return {k: summary[k] for k in keys}

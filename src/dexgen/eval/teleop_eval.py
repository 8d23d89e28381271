"""``dexgen eval``: does guided DexGen turn coarse, unsafe commands into safe motion that keeps their intent?

For every commanded rotation axis x seed, the RL expert of that axis is run first from seeded initial states on the
chosen objects (one episode per simulation); its fingertip trajectory is the reference of the corrupted-expert
command sources. Then, from the same initial states, for every command source, each method runs for the horizon:

- ``raw``: raw teleoperation, damped least-squares IK of the command's first step (``dexgen.sim.ik``);
- ``unguided``: the DexGen controller with α = 0 (ignores the command);
- ``guided``: the DexGen controller guided toward the command: the shipped method
  (``dexgen.controller.dexgen_controller.SHIPPED_METHOD``), or the settings ``--guided.*`` give;
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from dexgen.checks import check_int, check_number, parse_floats, parse_ints
from dexgen.controller.dexgen_controller import (
    SHIPPED_METHOD,
    ControllerConfig,
    DexGenController,
    fit_to_model,
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
from dexgen.teleop.human_hand import HUMAN_CALIBRATION, HumanHandSource, Retarget, fit_retarget, load_keypoints
from dexgen.teleop.operators import FAMILIES, HumanOpenLoop, check_seeds

METHODS = ("raw", "unguided", "guided", "expert")
SUITES = {
    "quick": {"wrist": "palm_down", "objects": "heldout", "axes": "+z,-z", "sources": "kinematic,corrupted:mixed",
              "seeds": "1,2,3", "episodes": 1, "seconds": 10.0, "sweep": "0,1"},
    "full": {"wrist": "palm_down", "objects": "heldout", "axes": "+z,-z",
             "sources": "kinematic,corrupted:clean,corrupted:noisy,corrupted:biased,corrupted:lagged,"
                        "corrupted:scaled,corrupted:frozen_thumb,corrupted:mixed",
             "seeds": "1,2,3", "episodes": 1, "seconds": 30.0, "sweep": "0,1"},
    # goal-reaching with closed-loop simulated operators (dexgen.eval.operator_eval)
    "operator-quick": {"wrist": "palm_down", "objects": "heldout", "goals": "+z:45,-z:45,+z:90,-z:90",
                       "operators": "dev", "goal_rule": "turn", "seeds": "1,2", "episodes": 1, "seconds": 10.0,
                       "axes": "", "sources": "", "sweep": ""},
    "operator": {"wrist": "palm_down", "objects": "heldout", "goals": "+z:45,+z:90,+z:135,-z:45,-z:90,-z:135",
                 "operators": "dev", "goal_rule": "turn", "seeds": "1,2,3,4,5,6,7,8,9,10", "episodes": 1,
                 "seconds": 15.0, "axes": "", "sources": "", "sweep": ""},
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
    recording, e.g. from dexgen teleop --record; see dexgen.teleop.commands), human:<family> (a simulated
    operator's open-loop turn at --omega: pauses, reversal, tilted or retarget; see dexgen.teleop.operators) and
    keypoints:<file.npz> (tracked human hand keypoints, retargeted; see dexgen.teleop.human_hand)."""
    keypoint_calibration: str | None = None
    """The calibration (a keypoint file with robot_tips) that retargets keypoints:<file> sources; None: the
    shipped synthetic operator's (dexgen.teleop.human_hand.HUMAN_CALIBRATION)."""
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
    guided: ControllerConfig = field(default_factory=lambda: SHIPPED_METHOD)
    """The guided method: the shipped one (``SHIPPED_METHOD``) unless a flag here changes a setting (e.g.
    ``--guided.alpha 0.3``), fitted to the model (``fit_to_model``). Its seed is each run's seed, and its DDIM steps
    and replanning apply to the unguided method too."""
    sweep: str | None = None
    """Guidance strengths of the sweep besides the guided method's own (comma-separated; empty: no sweep; 0: the
    unguided method's episodes)."""
    omega: float = 0.5
    """Angular speed of the kinematic-intent command, rad/s."""
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


def guided_config(cfg: EvalConfig, *, seed: int, alpha: float | None = None) -> ControllerConfig:
    """The guided method's controller config of the evaluation config ``cfg`` (fitted, see ``for_model``) for one
    run's ``seed``, at guidance strength ``alpha`` (None: the method's own)."""
    return replace(cfg.guided, seed=seed, alpha=cfg.guided.alpha if alpha is None else alpha)


def unguided_config(cfg: EvalConfig, *, seed: int) -> ControllerConfig:
    """The unguided method's controller config: α 0, with the guided method's DDIM steps and replanning."""
    return ControllerConfig(seed=seed, num_inference_steps=cfg.guided.num_inference_steps,
                            replan_every=cfg.guided.replan_every)  # fmt: skip


def for_model(cfg: EvalConfig, model: DexGenModel) -> EvalConfig:
    """``cfg`` resolved (the suite's defaults filled in) with its guided method fitted to ``model``
    (``fit_to_model``: one plan per decision for a model without a rotation predictor, no mode from the intent for
    one without mode dropout; a ValueError for another setting the model cannot use)."""
    return replace(cfg.resolved(), guided=fit_to_model(cfg.guided, model))


def _names(spec: str | None) -> list[str]:
    """The comma-separated entries of ``spec`` (None: none), stripped."""
    return [s.strip() for s in str(spec or "").split(",") if s.strip()]


def check_source_name(name: str) -> None:
    """A ValueError unless ``name`` is a command source ``make_source`` knows: kinematic, corrupted:<preset> (a name
    of ``dexgen.teleop.commands.PRESETS``), replay:<file.npz> or keypoints:<file.npz> (their files are read by
    ``check_sources``) or human:<family> (a name of ``dexgen.teleop.operators.FAMILIES``)."""
    if name == "kinematic" or name.startswith(("replay:", "keypoints:")):
        return
    if name.startswith("corrupted:"):
        corruption(name.split(":", 1)[1])
        return
    if name.startswith("human:"):
        family = name.split(":", 1)[1]
        if family not in FAMILIES:
            raise ValueError(f"unknown human-like family {family!r} in {name}; expected one of {', '.join(FAMILIES)}")
        return
    raise ValueError(f"unknown command source {name!r}; expected kinematic, corrupted:<preset>, replay:<file.npz>, "
                     f"human:<family> or keypoints:<file.npz>")  # fmt: skip


def check_sources(spec: str, *, calibration: str | None = None) -> None:
    """Check every command source of ``spec`` (comma-separated) before any rollout: the names, and each replay
    recording or keypoint file read in full, with the keypoint calibration (a one-line ValueError naming the file
    and its problem)."""
    for name in _names(spec):
        check_source_name(name)
        if name.startswith("replay:"):
            ReplayCommand(name.split(":", 1)[1], name=name)
        if name.startswith("keypoints:"):
            HumanHandSource(keypoint_retarget(calibration), name.split(":", 1)[1], name=name)


def keypoint_retarget(calibration: str | None) -> Retarget:
    """The retargeting fitted to a calibration file (None: the shipped synthetic operator's)."""
    kp, _, robot = load_keypoints(calibration or HUMAN_CALIBRATION)
    if robot is None:
        raise ValueError(f"{calibration}: a calibration needs robot_tips (the motion the person followed)")
    return fit_retarget(kp, robot)


def make_source(name: str, axis: str, omega: float, ref: Rollout, *, operators: str | None = None,
                seconds: float = 60.0, calibration: str | None = None) -> CommandSource:  # fmt: skip
    """The command source named ``name`` (kinematic, corrupted:<preset>, replay:<file.npz>, human:<family>,
    keypoints:<file.npz>) for commanded ``axis``; ``ref``: the expert's recorded rollout (with tips) the corrupted
    sources corrupt; ``operators`` (None: dev) and ``seconds`` (the horizon): the human-like families' population
    and length; ``calibration``: the keypoint calibration file (None: the shipped one)."""
    if name == "kinematic":
        return KinematicIntent(axis, omega, name="kinematic")
    if name.startswith("corrupted:"):
        return CorruptedExpert(ref.tips, episode_ends(ref.hold_steps), config=name.split(":", 1)[1], name=name)
    if name.startswith("replay:"):
        return ReplayCommand(name.split(":", 1)[1], name=name)
    if name.startswith("human:"):
        return HumanOpenLoop(name.split(":", 1)[1], axis, omega, operators=operators or "dev", seconds=seconds + 1.0,
                             name=name)  # fmt: skip
    if name.startswith("keypoints:"):
        return HumanHandSource(keypoint_retarget(calibration), name.split(":", 1)[1], name=name)
    raise ValueError(f"unknown command source {name!r}; expected kinematic, corrupted:<preset>, replay:<file.npz>, "
                     f"human:<family> or keypoints:<file.npz>")  # fmt: skip


def _source(cfg: EvalConfig, name: str, axis: str, ref: Rollout) -> CommandSource:
    return make_source(name, axis, cfg.omega, ref, operators=cfg.operators, seconds=cfg.seconds,
                       calibration=cfg.keypoint_calibration)  # fmt: skip


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
    step from the observed joint positions and fingertips of the controller frame (N, 44). The command's own
    fingertip layout (``command_tips``) is not used: raw teleoperation moves the robot's fingertips by the command."""

    def act(frame: np.ndarray, cmd: np.ndarray, *, command_tips: np.ndarray | None = None) -> np.ndarray:
        return ik.follow(frame, cmd)

    return act


def _commands_afterwards(source: CommandSource, tips: np.ndarray, seed: int) -> np.ndarray:
    """The commands (S, N, T, 4, 3) the source gives along a recorded trajectory tips (S + 1, N, 4, 3)."""
    source.reset(tips[0], rng=seed)
    return np.stack([source.command(t, tips[t]) for t in range(tips.shape[0] - 1)])


class LiveCommandPolicy:
    """A ``rollout`` policy: asks ``source`` for a command every step, turns it into joint targets with
    ``act(frame, command, command_tips=)`` (a controller's or the IK baseline's; ``command_tips`` the source's own
    fingertip layout, ``CommandSource.command_tips``) and records the commands in ``commands`` (one (N, T, 4, 3)
    array per step, metres, palm frame)."""

    def __init__(self, env: HandEnv, source: CommandSource, seed: int, act):
        self.env, self.source, self.act = env, source, act
        source.reset(env.fingertips(), rng=seed)
        self.commands: list[np.ndarray] = []

    def __call__(self, obs, t):
        cmd = self.source.command(t, self.env.fingertips())
        self.commands.append(cmd)
        frame = frame_from_policy_obs(obs["policy"])
        return targets_to_actions(self.env, self.act(frame, cmd, command_tips=self.source.command_tips()))


def _figures(r: Rollout, commands: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    held = np.where(r.dropped, r.hold_steps, commands.shape[0])
    return r.hold_s, r.rate_about(axis), 1000.0 * follow_error(r.tips, commands, held)


def run_suite(model: DexGenModel, cfg: EvalConfig, *, progress: bool = True) -> dict:
    """Run the evaluation ``cfg`` (resolved) with ``model``; returns the results (see ``write_report``)."""
    from tqdm import tqdm

    from dexgen.sim.ik import FingertipIK

    axes, sources = _names(cfg.axes), _names(cfg.sources)
    seeds, sweep = parse_ints("seeds", cfg.seeds), parse_floats("sweep", cfg.sweep, ge=0)
    check_sources(cfg.sources, calibration=cfg.keypoint_calibration)
    alpha = cfg.guided.alpha
    alphas = sorted({a for a in sweep if a > 0} | {alpha})
    experts = {a: Expert.load(shipped_expert_path("rotate", a, cfg.wrist), task="rotate", axis=a, wrist=cfg.wrist)
               for a in axes}  # fmt: skip
    ik = FingertipIK()
    results = {s: {m: Episodes([], [], []) for m in METHODS} for s in sources}
    swept = {s: {a: Episodes([], [], []) for a in alphas} for s in sources}
    frames: dict[str, list] = {}
    hand_objects: list[str] = []
    rejected: dict[str, list[int]] = {}  # per controller method: outputs rejected as not finite, and all outputs
    total = len(axes) * len(seeds) * (2 + len(sources) * (1 + len(alphas)))
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
            ctrl = DexGenController(
                model, config=unguided_config(cfg, seed=seed), batch=e.num_envs, gravity_dir=e.sims.gravity_dir
            )
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
                for a in alphas:
                    e = env()
                    c = DexGenController(
                        model,
                        config=guided_config(cfg, alpha=a, seed=seed),
                        batch=e.num_envs,
                        gravity_dir=e.sims.gravity_dir,
                    )
                    live = LiveCommandPolicy(e, _source(cfg, name, axis, ref), seed, c.act)
                    video = first and a == alpha
                    r = rollout(e, live, record_tips=True, on_step=_recorder(e, frames, "guided") if video else None)
                    figs = _figures(r, np.stack(live.commands), axis_vec)
                    swept[name][a].extend(*figs)
                    where = f"axis {axis}, seed {seed}, source {name}"
                    _count_rejected(rejected, "guided" if a == alpha else f"guided α={a:g}", c, where)
                    if a == alpha:
                        results[name]["guided"].extend(*figs)
                    bar.update(1)
    bar.close()
    return {"results": results, "swept": swept, "frames": frames, "hand_objects": hand_objects,
            "rejected": rejected}  # fmt: skip


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
    return for_model(cfg, model), model, path


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

"""``dexgen eval --suite operator`` / ``--suite operator-quick``: do the methods reach a simulated operator's goals?

For every goal ("turn the object 90 degrees about palm +z": ``Goal``) x seed, the environment of the goal axis's RL
expert starts from seeded grasps of the chosen objects (one episode per simulation), and each method runs for the
horizon from the same initial states:

- ``raw``: raw teleoperation, IK of a closed-loop simulated operator's command (``dexgen.teleop.operators``);
- ``unguided``: the DexGen controller with α = 0 (ignores the operator: run once per axis and seed, its
  trajectory scored against every goal of that axis);
- ``guided``: the DexGen controller guided by the operator's command (the shipped method, or ``--guided.*``);
- ``expert``: the reference: the RL expert of the goal's axis until the object is within the tolerance of the goal,
  then holding: its joint targets are kept where they are at that moment (the hand stops moving).

The operators (one per simulation, drawn from the ``operators`` set with ``operator_rng``, the same draws for raw
and guided) see the object's pose every control step (``ClosedLoopOperator.observe``), with their reaction delay.

Per episode: the time the object first comes within ``GOAL_TOLERANCE`` (0.3 rad) of its goal while held; success
if it is still held ``SETTLE_S`` (2 s) later (so an episode that reaches the goal less than 2 s before the horizon
does not count); whether it is also still at the goal then (``settled``: not passing through it, as an object
spun round would); holding time (until the drop, capped at the horizon). The distance to the goal follows the
config's ``goal_rule`` (``GOAL_RULES``): turn (the angle still to turn about the goal's axis, the turn followed
through every step: ``turn_about``) or orientation (the whole rotation to the goal orientation, tilt included);
every run reports the success rate under both. The operator suites use the turn rule: the shipped palm-down experts
tilt the objects as they turn them (by 0.2-0.6 rad), so under the orientation rule even the expert reaches under
half of any ±z goal (docs/results.md).

Per method: the success rate with its Wilson 95 % interval, the median time to the goal over successes and the
median holding time with bootstrap 95 % intervals, the drop rate. Overall: success_ratio_guided_vs_raw, the ratio of
the success rates with add-one smoothing, (s_g + 1) / (n_g + 2) over (s_r + 1) / (n_r + 2), finite even where raw
never succeeds (the unsmoothed ratio is given too, null where raw has no success); holding_ratio_guided_vs_raw, the
ratio of median holding times with a paired bootstrap interval. Non-finite figures are written as null.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dexgen.controller.dexgen_controller import DexGenController, frame_from_policy_obs
from dexgen.eval.holding_curve import held_fractions, holding_curve_plot, save_figure
from dexgen.eval.metrics import median_ci, median_ratio_ci
from dexgen.eval.model_eval import targets_to_actions
from dexgen.eval.teleop_eval import (
    EvalConfig,
    LiveCommandPolicy,
    _recorder,
    guided_config,
    load_for_eval,
    raw_teleop,
    unguided_config,
    weights_sha256,
)
from dexgen.eval.teleop_report import side_by_side_video
from dexgen.model.dexgen_model import DexGenModel
from dexgen.rl.evaluate import expert_env, wilson_interval
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.sim.rollout import rollout
from dexgen.sim.rotations import axis_angle_quat, quat_conj, quat_mul, quat_to_rotvec
from dexgen.sim.tasks import AXES
from dexgen.teleop.operators import ClosedLoopOperator, check_seeds, operator_rng, operator_set, turn_increment

GOAL_TOLERANCE = 0.3
"""Radians: the object is at its goal when its orientation is within this angle of the goal orientation."""
GOAL_RULES = ("turn", "orientation")
"""How the distance to the goal is measured: turn (the angle still to turn about the goal's axis: the object's tilt
off that axis is ignored, and the operators correct none) or orientation (the whole rotation to the goal
orientation, tilt included; the operators correct the tilt too)."""
SETTLE_S = 2.0
"""Seconds the object must still be held after it first reaches the goal for the episode to succeed."""
METHODS = ("raw", "unguided", "guided", "expert")
CURVE_TIMES_S = (2.0, 5.0, 10.0, 15.0, 20.0, 30.0)
"""Times (seconds, those within the horizon, and the horizon) of the at-goal shares in the JSON."""


@dataclass(frozen=True)
class Goal:
    """Turn the object by ``degrees`` about the palm-frame ``axis`` (one of ``sim.tasks.AXES``) from where it starts."""

    axis: str
    """Signed palm-frame axis, e.g. "+z"."""
    degrees: float
    """Turn, degrees, in (0, 180]."""

    @property
    def name(self) -> str:
        return f"{self.axis}:{self.degrees:g}"

    @property
    def angle(self) -> float:
        """The turn, radians."""
        return math.radians(self.degrees)


def parse_goals(spec: str, wrist: str) -> list[Goal]:
    """Goals from "axis:degrees,..." (e.g. "+z:90,-z:45"); a one-line ValueError for an unknown axis, a bad angle
    or an axis the wrist has no shipped rotation expert for (the expert reference and the environment need one)."""
    goals = []
    for item in (s.strip() for s in str(spec).split(",")):
        if not item:
            continue
        axis, sep, degrees = item.partition(":")
        if not sep or axis not in AXES:
            raise ValueError(f"goal {item!r} is not <axis>:<degrees> with an axis of {', '.join(AXES)} (e.g. +z:90)")
        try:
            value = float(degrees)
        except ValueError:
            raise ValueError(f"goal {item!r}: the angle {degrees!r} is not a number of degrees") from None
        if not math.isfinite(value) or not 0.0 < value <= 180.0:
            raise ValueError(f"goal {item!r}: the angle must be in (0, 180] degrees, got {value:g}")
        if not shipped_expert_path("rotate", axis, wrist).is_file():
            have = [a for a in AXES if shipped_expert_path("rotate", a, wrist).is_file()]
            raise ValueError(f"goal {item!r}: the {wrist} wrist has no rotation expert about {axis} (goals can be "
                             f"about {', '.join(have) or 'no axis'})")  # fmt: skip
        goals.append(Goal(axis, value))
    if not goals:
        raise ValueError("no goals given (e.g. --goals +z:90,-z:90)")
    return goals


def goal_error(quats: np.ndarray, goal_quat: np.ndarray) -> np.ndarray:
    """(...) radians: the angle of the rotation from orientations ``quats`` (..., 4) to ``goal_quat`` (broadcast)."""
    return np.linalg.norm(quat_to_rotvec(quat_mul(goal_quat, quat_conj(quats))), axis=-1)


def turn_about(quats: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """(S + 1, ...) radians the object has turned about unit ``axis`` (3,) since row 0 of orientations ``quats``
    (S + 1, ..., 4), one row per control step: the sum of each step's turn about the axis (the object's angular
    velocity about it integrated, as the progress metric does), so the tilt off the axis does not count and a turn
    the wrong way by 270 degrees is not a turn the right way by 90."""
    steps = turn_increment(quats[:-1], quats[1:], axis)
    return np.concatenate((np.zeros((1,) + steps.shape[1:]), np.cumsum(steps, axis=0)))


def held_rows(hold_steps: np.ndarray, dropped: np.ndarray, rows: int) -> np.ndarray:
    """(rows, N) bool: the object is in the hand in state row k (k = 0: the start, k: after k control steps). A
    dropped episode's last counted step is the one that ended it, so its state is no longer held."""
    k = np.arange(rows)[:, None]
    return np.where(dropped[None], k < hold_steps[None], True)


def goal_outcome(error: np.ndarray, hold_steps: np.ndarray, dropped: np.ndarray, dt: float, *,
                 tolerance: float = GOAL_TOLERANCE, settle_s: float = SETTLE_S) -> dict[str, np.ndarray]:  # fmt: skip
    """The suite's success rule on trajectories of goal errors ``error`` (S + 1, N) radians (row k after k control
    steps of ``dt`` seconds), with the rollout's ``hold_steps`` (N,) and ``dropped`` (N,): {"reached_s": (N,) first
    time at the goal while held (NaN: never), "success": (N,) reached and still held ``settle_s`` later,
    "hold_s": (N,) holding time, "at_goal": (S + 1, N) at the goal and held, "settled": (N,) a success still at
    the goal ``settle_s`` after reaching it (not passing through it)}."""
    rows = error.shape[0]
    horizon = (rows - 1) * dt
    at_goal = (error <= tolerance) & held_rows(hold_steps, dropped, rows)
    ever = at_goal.any(axis=0)
    reached_s = np.where(ever, at_goal.argmax(axis=0) * dt, np.nan)
    hold_s = np.where(dropped, hold_steps * dt, horizon)
    success = ever & (np.nan_to_num(reached_s, nan=np.inf) + settle_s <= hold_s + 1e-9)
    later = np.minimum(at_goal.argmax(axis=0) + int(round(settle_s / dt)), rows - 1)
    settled = success & at_goal[later, np.arange(error.shape[1])]
    return {"reached_s": reached_s, "success": success, "hold_s": hold_s, "at_goal": at_goal, "settled": settled}


class GoalTracker:
    """Records the object's orientation in every environment of ``env`` from now on (``on_step`` after each control
    step) and the goal orientation: ``goal`` turned from each object's present orientation; ``rule``: one of
    ``GOAL_RULES``."""

    def __init__(self, env, goal: Goal, rule: str) -> None:
        if rule not in GOAL_RULES:
            raise ValueError(f"unknown goal rule {rule!r}; expected one of {', '.join(GOAL_RULES)}")
        self.env, self.turn, self.angle = env, rule == "turn", goal.angle
        self.axis = np.array(AXES[goal.axis])
        start = env.object_pose()[1]
        self.goal_quat = quat_mul(axis_angle_quat(self.axis, goal.angle), start)
        self.quats = [start]
        self.turned = np.zeros(len(start))

    def on_step(self, _t: int) -> None:
        quat = self.env.last_state.object_quat.copy()  # before any reset the step triggered
        self.turned = self.turned + turn_increment(self.quats[-1], quat, self.axis)
        self.quats.append(quat)

    def for_goal(self, goal: Goal) -> GoalTracker:
        """A tracker of another goal about the same axis over the same recorded orientations (a method that ignores
        the goal, run once for every goal of its axis)."""
        other = GoalTracker.__new__(GoalTracker)
        other.env, other.turn, other.axis, other.quats = self.env, self.turn, self.axis, self.quats
        other.angle, other.turned = goal.angle, self.turned
        other.goal_quat = quat_mul(axis_angle_quat(self.axis, goal.angle), self.quats[0])
        return other

    def error_now(self) -> np.ndarray:
        """(N,) the present goal error under the tracker's rule, radians."""
        if self.turn:
            return np.abs(self.angle - self.turned)
        return goal_error(self.env.object_pose()[1], self.goal_quat)

    def errors(self) -> dict[str, np.ndarray]:
        """(S + 1, N) goal errors, radians, of every recorded row under each of ``GOAL_RULES``."""
        quats = np.stack(self.quats)
        return {"turn": np.abs(self.angle - turn_about(quats, self.axis)),
                "orientation": goal_error(quats, self.goal_quat)}  # fmt: skip

    def outcome(self, r) -> dict:
        """``goal_outcome`` of the recorded rollout ``r`` under the tracker's rule, with ``turn_success`` and
        ``orientation_success`` (each rule's success)."""
        both = {rule: goal_outcome(err, r.hold_steps, r.dropped, r.dt) for rule, err in self.errors().items()}
        out = dict(both["turn" if self.turn else "orientation"])
        out["turn_success"], out["orientation_success"] = both["turn"]["success"], both["orientation"]["success"]
        return out


class LiveOperatorPolicy(LiveCommandPolicy):
    """``LiveCommandPolicy`` for a closed-loop operator: before each command the operator sees the object's pose
    (``ClosedLoopOperator.observe``), as a person watching the hand would."""

    def __call__(self, obs, t):
        pos, quat = self.env.object_pose()
        self.source.observe(t, quat, pos)
        return super().__call__(obs, t)


def _chain(*callbacks):
    callbacks = [c for c in callbacks if c is not None]
    return lambda t: [c(t) for c in callbacks] and None


def _goal_expert_policy(env, expert: Expert, tracker: GoalTracker):
    """The expert reference: the expert's actions until each object first comes within the tolerance of its goal,
    then zero relative actions (joint targets held where they are)."""
    reached = np.zeros(env.num_envs, dtype=bool)

    def policy(obs, _t):
        reached[:] |= tracker.error_now() <= GOAL_TOLERANCE
        hold = targets_to_actions(env, env.targets)
        return np.where(reached[:, None], hold, expert.act(obs))

    return policy


def run_operator_suite(model: DexGenModel, cfg: EvalConfig, *, progress: bool = True) -> dict:
    """Run the goal-reaching suite ``cfg`` (resolved, see ``teleop_eval.for_model``) with ``model``: returns
    ``{"outcomes": {goal: {method: [outcome per seed]}}, "frames", "hand_objects", "dt"}``."""
    from tqdm import tqdm

    from dexgen.sim.ik import FingertipIK

    goals, seeds = check_operator_config(cfg)
    experts = {a: Expert.load(shipped_expert_path("rotate", a, cfg.wrist)) for a in {g.axis for g in goals}}
    raw_act = raw_teleop(FingertipIK())
    outcomes = {g.name: {m: [] for m in METHODS} for g in goals}
    unguided: dict[tuple[str, int], tuple] = {}  # (axis, seed) -> (rollout, tracker): it ignores the goal
    frames: dict[str, list] = {}
    hand_objects: list[str] = []
    dt = 0.0
    bar = tqdm(total=len(goals) * len(seeds) * len(METHODS), desc="eval", disable=not progress, unit="rollout")
    for goal in goals:
        expert = experts[goal.axis]
        for seed in seeds:

            def env(seed=seed, expert=expert):
                return expert_env(expert, cfg.objects, seed=seed, episodes=cfg.episodes, seconds=cfg.seconds,
                                  threads=cfg.threads, wrist=cfg.wrist)  # fmt: skip

            first = cfg.video and goal == goals[0] and seed == seeds[0]
            for method in METHODS:
                if method == "unguided" and (goal.axis, seed) in unguided:
                    r, tracker = unguided[goal.axis, seed]
                    outcomes[goal.name][method].append(tracker.for_goal(goal).outcome(r))
                    bar.update(1)
                    continue
                e = env()
                hand_objects, dt = [o.name for o in e.env_objects], e.dt
                tracker = GoalTracker(e, goal, cfg.goal_rule)
                video = _recorder(e, frames, method) if first and method in ("raw", "guided") else None
                if method == "expert":
                    policy = _goal_expert_policy(e, expert, tracker)
                elif method == "unguided":
                    ctrl = DexGenController(
                        model, config=unguided_config(cfg, seed=seed), batch=e.num_envs, gravity_dir=e.sims.gravity_dir
                    )
                    policy = lambda obs, _t, c=ctrl, en=e: targets_to_actions(  # noqa: E731
                        en, c.act(frame_from_policy_obs(obs["policy"]))
                    )
                else:
                    act = raw_act
                    if method == "guided":
                        ctrl = DexGenController(
                            model,
                            config=guided_config(cfg, seed=seed),
                            batch=e.num_envs,
                            gravity_dir=e.sims.gravity_dir,
                        )
                        act = ctrl.act
                    operator = ClosedLoopOperator(goal.axis, goal.angle, operators=cfg.operators,
                                                  turn_only=cfg.goal_rule == "turn", name="operator")  # fmt: skip
                    policy = LiveOperatorPolicy(e, operator, operator_rng(cfg.operators, seed), act)
                r = rollout(e, policy, on_step=_chain(tracker.on_step, video))
                outcomes[goal.name][method].append(tracker.outcome(r))
                if method == "unguided":
                    unguided[goal.axis, seed] = r, tracker
                bar.update(1)
    bar.close()
    return {"outcomes": outcomes, "frames": frames, "hand_objects": hand_objects, "dt": dt}


def check_operator_config(cfg: EvalConfig) -> tuple[list[Goal], list[int]]:
    """The goals and seeds of an operator suite's (resolved) config, checked: a one-line ValueError for an unknown
    goal or operator set, a goal without an expert, seeds of the other operator set, or a non-finite setting."""
    operator_set(cfg.operators)
    if cfg.goal_rule not in GOAL_RULES:
        raise ValueError(f"unknown goal rule {cfg.goal_rule!r}; expected one of {', '.join(GOAL_RULES)}")
    goals = parse_goals(cfg.goals, cfg.wrist)
    try:
        seeds = [int(s) for s in str(cfg.seeds).split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"seeds must be comma-separated integers, got {cfg.seeds!r}") from None
    if not seeds:
        raise ValueError("no seeds given")
    check_seeds(cfg.operators, seeds)
    if not math.isfinite(float(cfg.seconds)) or cfg.seconds <= 0:
        raise ValueError(f"--seconds must be finite and > 0, got {cfg.seconds}")
    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {cfg.episodes}")
    return goals, seeds


def _pool(outcomes: list[dict]) -> dict[str, np.ndarray]:
    keys = ("reached_s", "success", "hold_s", "settled", "turn_success", "orientation_success")
    pooled = {k: np.concatenate([o[k] for o in outcomes]) for k in keys}
    rows = max(o["at_goal"].shape[0] for o in outcomes)
    pooled["at_goal"] = np.concatenate([o["at_goal"][:rows] for o in outcomes], axis=1)
    return pooled


def method_figures(p: dict[str, np.ndarray], seconds: float) -> dict:
    """One method's figures from its pooled outcomes (see ``goal_outcome``)."""
    n, s = len(p["success"]), int(p["success"].sum())
    reach = median_ci(p["reached_s"][p["success"]])
    hold = median_ci(p["hold_s"])
    return {
        "episodes": n,
        "successes": s,
        "success_rate": s / n if n else None,
        "success_rate_ci95": list(wilson_interval(s, n)),
        "reached_rate": float(np.mean(~np.isnan(p["reached_s"]))) if n else None,
        "time_to_goal_s_median": reach["median"],
        "time_to_goal_s_ci95": [reach["ci_low"], reach["ci_high"]],
        "holding_s_median": hold["median"],
        "holding_s_ci95": [hold["ci_low"], hold["ci_high"]],
        "drop_rate": float(np.mean(p["hold_s"] < seconds - 1e-6)) if n else None,
        "settled_rate": float(np.mean(p["settled"])) if n else None,
        **{f"{rule}_{k}": v for rule in GOAL_RULES for k, v in _rate(p[f"{rule}_success"]).items()},
    }


def _rate(success: np.ndarray) -> dict:
    n, s = len(success), int(success.sum())
    return {"success_rate": s / n if n else None, "success_rate_ci95": list(wilson_interval(s, n))}


def _smoothed(f: dict) -> float:
    return (f["successes"] + 1) / (f["episodes"] + 2)


def summarize_operator(run: dict, cfg: EvalConfig) -> dict:
    """The JSON summary of an operator suite run (see the module docstring); non-finite figures are null."""
    outcomes = run["outcomes"]
    pooled = {m: _pool([o for per in outcomes.values() for o in per[m]]) for m in METHODS}
    methods = {m: method_figures(p, cfg.seconds) for m, p in pooled.items()}
    per_goal = {g: {m: method_figures(_pool(per[m]), cfg.seconds) for m in METHODS} for g, per in outcomes.items()}
    guided, raw = methods["guided"], methods["raw"]
    dt = run["dt"]
    times = sorted({t for t in CURVE_TIMES_S if t < cfg.seconds} | {float(cfg.seconds)})
    at_goal = {m: {f"{t:g}": float(p["at_goal"][min(int(round(t / dt)), p["at_goal"].shape[0] - 1)].mean())
                   for t in times} for m, p in pooled.items()}  # fmt: skip
    summary = {
        "suite": cfg.suite,
        "goals": list(outcomes),
        "operators": cfg.operators,
        "goal_rule": cfg.goal_rule,
        "goal_tolerance_rad": GOAL_TOLERANCE,
        "settle_s": SETTLE_S,
        "methods": methods,
        "per_goal": per_goal,
        "success_ratio_guided_vs_raw": _smoothed(guided) / _smoothed(raw),
        "success_ratio_smoothing": "add-one: (successes + 1) / (episodes + 2) per method",
        "success_ratio_guided_vs_raw_unsmoothed": (
            guided["success_rate"] / raw["success_rate"] if raw["successes"] else None
        ),
        "holding_ratio_guided_vs_raw": (
            guided["holding_s_median"] / raw["holding_s_median"] if raw["holding_s_median"] > 0 else None
        ),
        "holding_ratio_ci95": list(median_ratio_ci(pooled["guided"]["hold_s"], pooled["raw"]["hold_s"])),
        "at_goal_fraction": at_goal,
        "held_fraction": held_fractions({m: p["hold_s"].tolist() for m, p in pooled.items()}, seconds=cfg.seconds),
        "hand_objects": run["hand_objects"],
    }
    return _finite(summary)


def _finite(value):
    """``value`` with every non-finite float replaced by None (valid JSON, no bare NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _cell(f: dict, key: str, fmt: str = ".3g") -> str:
    value, ci = f[key], f.get(f"{key}_ci95")
    if value is None:
        return "-"
    text = format(value, fmt)
    return f"{text} [{format(ci[0], fmt)}, {format(ci[1], fmt)}]" if ci and None not in ci else text


def markdown_operator_table(summary: dict) -> str:
    """Markdown tables: every goal pooled, then per goal (95 % intervals: Wilson for rates, bootstrap for medians)."""

    def table(per_method: dict) -> list[str]:
        rows = ["| method | success rate | time to goal s | holding s | drop rate | settled at the goal | "
                "success: turn / orientation rule | episodes |",
                "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for m, f in per_method.items():
            rows.append(f"| {m} | {_cell(f, 'success_rate', '.2f')} | {_cell(f, 'time_to_goal_s_median')} | "
                        f"{_cell(f, 'holding_s_median')} | {f['drop_rate']:.2f} | {f['settled_rate']:.2f} | "
                        f"{f['turn_success_rate']:.2f} / {f['orientation_success_rate']:.2f} | "
                        f"{f['episodes']} |")  # fmt: skip
        return rows

    ratio, raw_ratio = summary["success_ratio_guided_vs_raw"], summary["success_ratio_guided_vs_raw_unsmoothed"]
    hold, hold_ci = summary["holding_ratio_guided_vs_raw"], summary["holding_ratio_ci95"]
    lines = [f"## dexgen eval --suite {summary['suite']} (operators: {summary['operators']})", "",
             f"Goals {', '.join(summary['goals'])}; success: within {summary['goal_tolerance_rad']} rad of the goal "
             f"({summary['goal_rule']} rule) and still held {summary['settle_s']:g} s later. All goals:",
             ""]  # fmt: skip
    lines += table(summary["methods"])
    lines += ["", f"Guided / raw success rate: {ratio:.2f}x (add-one smoothed; unsmoothed "
              f"{'-' if raw_ratio is None else f'{raw_ratio:.2f}x'}); guided / raw median holding: "
              f"{'-' if hold is None else f'{hold:.2f}x'}"
              + (f" (95 % CI {hold_ci[0]:.2f}-{hold_ci[1]:.2f}x)" if None not in hold_ci else ""), ""]  # fmt: skip
    shares = "; ".join(f"{m} " + " / ".join(f"{v:.2f}" for v in h.values())
                       for m, h in summary["at_goal_fraction"].items())  # fmt: skip
    times = " / ".join(next(iter(summary["at_goal_fraction"].values())))
    lines += [f"Share of episodes at the goal (and held) at {times} s: {shares}", ""]
    for g, pm in summary["per_goal"].items():
        lines += [f"### {g}", ""] + table(pm) + [""]
    return "\n".join(lines)


def goal_curve_plot(at_goal: dict[str, np.ndarray], path: Path, *, dt: float) -> Path:
    """Plot the share of episodes at the goal (and held) vs time, one line per method, from (S + 1, E) booleans;
    writes ``path`` (PNG) and returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for m, a in at_goal.items():
        ax.step(np.arange(a.shape[0]) * dt, a.mean(axis=1), where="post", label=f"{m} ({a.shape[1]} episodes)")
    ax.set_ylim(0.0, 1.02)
    ax.set_xlim(0.0, (max(a.shape[0] for a in at_goal.values()) - 1) * dt)
    ax.set_xlabel("time since the episode started (s)")
    ax.set_ylabel(f"share of episodes within {GOAL_TOLERANCE} rad of the goal")
    ax.set_title("Operator goals: at the goal vs time")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def write_operator_report(run: dict, cfg: EvalConfig, *, model_sha256: str | None = None) -> dict:
    """Write eval.json (the summary and every episode's outcome, ``per_episode[goal][method]``), eval.md,
    at_goal.png, holding.png (and raw_vs_guided.mp4) into ``cfg.out``; returns the summary with ``files``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    config = asdict(cfg) | ({"model_sha256": model_sha256} if model_sha256 is not None else {})
    summary = {"config": _finite(config), **summarize_operator(run, cfg)}
    pooled = {m: _pool([o for per in run["outcomes"].values() for o in per[m]]) for m in METHODS}
    files = {"json": str(out / "eval.json"), "table": str(out / "eval.md")}
    files["goal_plot"] = str(goal_curve_plot({m: p["at_goal"] for m, p in pooled.items()}, out / "at_goal.png",
                                             dt=run["dt"]))  # fmt: skip
    held = {m: p["hold_s"].tolist() for m, p in pooled.items()}
    files["holding_plot"] = str(holding_curve_plot(held, out / "holding.png", seconds=cfg.seconds))
    if {"raw", "guided"} <= set(run["frames"]):
        raw, guided = run["frames"]["raw"], run["frames"]["guided"]
        files["video"] = str(side_by_side_video(raw, guided, out / "raw_vs_guided.mp4"))
    summary["files"] = files
    Path(files["table"]).write_text(markdown_operator_table(summary) + "\n")
    per_episode = {
        g: {m: _finite({"success": np.concatenate([o["success"] for o in per[m]]).tolist(),
                        "time_to_goal_s": np.concatenate([o["reached_s"] for o in per[m]]).tolist(),
                        "holding_s": np.concatenate([o["hold_s"] for o in per[m]]).tolist(),
                        "turn_success": np.concatenate([o["turn_success"] for o in per[m]]).tolist(),
                        "orientation_success": np.concatenate([o["orientation_success"] for o in per[m]]).tolist()})
            for m in METHODS}
        for g, per in run["outcomes"].items()
    }  # fmt: skip
    record = {**summary, "per_episode": per_episode}
    Path(files["json"]).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    return summary


def run_operator_eval(cfg: EvalConfig, model: DexGenModel, path: str | Path, *, sha256: str | None) -> dict:
    """The eval command for an operator suite: ``cfg`` resolved for ``model`` (loaded from ``path``)."""
    check_operator_config(cfg)
    start = time.perf_counter()
    run = run_operator_suite(model, cfg)
    summary = write_operator_report(run, cfg, model_sha256=sha256)
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    if cfg.json:
        return summary
    print(markdown_operator_table(summary))
    keys = ("success_ratio_guided_vs_raw", "holding_ratio_guided_vs_raw", "holding_ratio_ci95", "files", "wall_s")
    return {k: summary[k] for k in keys} | {"success_rate": {m: f["success_rate"] for m, f in
                                                             summary["methods"].items()}}  # fmt: skip


def run_operator_command(cfg: EvalConfig) -> dict:
    """The eval command's goal-reaching suites: check the goals, operators and seeds before loading anything, then
    run ``run_operator_eval`` with the model ``cfg`` names."""
    check_operator_config(cfg.resolved())
    cfg, model, path = load_for_eval(cfg)
    return run_operator_eval(cfg, model, path, sha256=weights_sha256(path))

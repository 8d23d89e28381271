"""Diagnostic (not part of the package): when the guided hand stops turning the object, does it still carry out
its plans, and does the object follow the fingers?

For the full suite's settings (palm down, held-out objects, +z and -z, 30 s episodes) it runs the RL expert and the
DexGen controller on each given command source and seed, and prints per 5-s window the median over the steps (or
the 0.4-s stretches) of the episodes still holding the object then:

- ``actual``: the object's mean rotation rate about the commanded axis over the next horizon (8 steps), rad/s;
- ``predicted``: the model's rotation predictor applied to the fingertip motion the hand then executed over those
  8 steps (what the model believes that motion does to the object), rad/s;
- ``tips``: the fingertips' mean displacement per control step, mm; ``plan``: the same of the plan's first step
  (DexGen only); ``tracking``: the executed displacement projected on the planned one, as a fraction of it;
- ``at limit``: the share of joint targets at a joint limit;

and, over 10-30 s, per joint: the share of steps with its target at a limit and its mean target minus position
(rad; the squeeze the position controller turns into force). ``--variant prior`` runs the model without the
command (unguided, given the commanded rotation primitive as its mode): the prior alone. ``--squeeze g`` is a
probe: the controller's targets are pushed away from the joint positions, targets + g (targets - positions).

    python scripts/plan_vs_execution.py --seeds 16,17 --sources all   # about 10 minutes on 2 cores
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dexgen.controller.dexgen_controller import ControllerConfig, DexGenController, frame_from_policy_obs
from dexgen.controller.observation import ObservationHistory
from dexgen.data.schema import PRIMITIVES
from dexgen.eval.model_eval import targets_to_actions
from dexgen.eval.teleop_eval import SUITES, EvalConfig, for_model, guided_config, make_source
from dexgen.model.checkpoint import load_model, shipped_model_path
from dexgen.rl.evaluate import expert_env
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.sim.rollout import rollout
from dexgen.sim.tasks import AXES

WINDOW_STEPS = 100  # 5 s at the 20 Hz control rate
SECONDS = 30.0
STRIDE = 5  # steps between the starts of the 8-step stretches read by the rotation predictor


def run_episodes(env, model, axis: np.ndarray, *, expert: Expert | None = None, ctrl: DexGenController | None = None,
                 source=None, seed: int = 0, squeeze: float = 0.0) -> dict[str, np.ndarray]:  # fmt: skip
    """One episode per simulation under the expert (``expert``) or the controller (``ctrl``, fed ``source``'s
    commands, or none for a controller of the prior alone); per-step logs, (steps, N, ...) arrays: ``hist`` the
    model's observation history, ``tips`` (m), ``plan1`` the plan's first step (m, NaN for the expert), ``rate``
    (rad/s about ``axis``), ``targets`` and ``q`` (rad), ``alive`` (held before the step)."""
    n, lo, hi = env.num_envs, env.joint_range[:, 0], env.joint_range[:, 1]
    history = ObservationHistory(n, model.cfg.history)
    logs = {k: [] for k in ("hist", "tips", "plan1", "rate", "targets", "q", "alive")}
    alive = np.ones(n, dtype=bool)
    if source is not None:
        source.reset(env.fingertips(), rng=seed)

    def policy(obs, t):
        frame = frame_from_policy_obs(obs["policy"]).astype(np.float32)
        logs["hist"].append(history.push(frame).copy())
        logs["tips"].append(env.fingertips().copy())
        logs["alive"].append(alive.copy())
        if ctrl is None:
            logs["plan1"].append(np.full((n, 4, 3), np.nan))
            return expert.act(obs)
        command = source.command(t, env.fingertips()) if source is not None else None
        targets = ctrl.act(frame, command)
        logs["plan1"].append(ctrl._plan[:, 0].numpy().astype(np.float64))
        if squeeze:
            targets = np.clip(targets + squeeze * (targets - frame[:, :16]), lo, hi)
        return targets_to_actions(env, targets)

    def on_step(_t):
        s = env.last_state
        logs["rate"].append(s.object_angvel @ axis)
        logs["targets"].append(s.targets.copy())
        logs["q"].append(s.q.copy())
        alive[:] &= env.episode_length > 0

    rollout(env, policy, on_step=on_step)
    return {k: np.array(v) for k, v in logs.items()}


def windowed(logs: dict[str, np.ndarray], model, axis: np.ndarray, joint_range: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step or per-stretch figures with their step index and validity, ``name -> (values, steps, valid)``,
    values (K, N)."""
    tips, alive, T = logs["tips"], logs["alive"], model.cfg.horizon
    steps = len(tips)
    starts = np.arange(0, steps - T - 1, STRIDE)
    executed = np.stack([tips[t + 1 : t + 1 + T] - tips[t][None] for t in starts])  # (K, T, N, 4, 3)
    executed = executed.transpose(0, 2, 1, 3, 4).reshape(-1, T, 4, 3)
    hist = logs["hist"][starts].reshape(-1, *logs["hist"].shape[2:])
    with torch.no_grad():
        predicted = model.predict_rotation(torch.as_tensor(hist), torch.as_tensor(executed, dtype=torch.float32))
    predicted = (predicted.numpy() @ axis).reshape(len(starts), -1)
    actual = np.stack([logs["rate"][t : t + T].mean(0) for t in starts])
    held_through = np.stack([alive[min(t + T + 1, steps - 1)] for t in starts])
    step = np.arange(steps - 1)
    exe = tips[1:] - tips[:-1]
    plan = logs["plan1"][:-1] - tips[:-1]
    den = (plan * plan).sum((-1, -2))
    tracking = np.where(den > 0, (exe * plan).sum((-1, -2)) / np.maximum(den, 1e-12), np.nan)
    lo, hi = joint_range[:, 0], joint_range[:, 1]
    t = logs["targets"][:-1]
    held = alive[1:]
    return {
        "actual": (actual, starts, held_through),
        "predicted": (predicted, starts, held_through),
        "tips": (1000 * np.linalg.norm(exe, axis=-1).mean(-1), step, held),
        "plan": (1000 * np.linalg.norm(plan, axis=-1).mean(-1), step, held),
        "tracking": (tracking, step, held),
        "at limit": (((t <= lo + 1e-3) | (t >= hi - 1e-3)).mean(-1), step, held),
    }


def window_medians(values: np.ndarray, steps: np.ndarray, valid: np.ndarray) -> list[float]:
    out = []
    for i in range(int(SECONDS * 20) // WINDOW_STEPS):
        v = values[((steps // WINDOW_STEPS) == i)[:, None] & valid & np.isfinite(values)]
        out.append(float(np.median(v)) if v.size else float("nan"))
    return out


def per_joint_late(runs: list[dict], joint_range: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Over 10-30 s of held steps: per joint (16,), the share of targets at a limit and the mean target - q."""
    t = np.concatenate([r["targets"][200:-1] for r in runs], 1)  # the targets of step k, applied while held
    q = np.concatenate([r["q"][200:-1] for r in runs], 1)
    held = np.concatenate([r["alive"][201:] for r in runs], 1)  # still held after step k
    t, q = t[held], q[held]
    lo, hi = joint_range[:, 0], joint_range[:, 1]
    return ((t <= lo + 1e-3) | (t >= hi - 1e-3)).mean(0), (t - q).mean(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="16,17")
    p.add_argument("--sources", default="all", help="comma-separated, or all (the full suite's eight)")
    p.add_argument("--variant", choices=("guided", "prior"), default="guided")
    p.add_argument("--squeeze", type=float, default=0.0)
    p.add_argument("--checkpoint", default=None, help="model weights (default: the shipped palm-down model)")
    a = p.parse_args()
    sources = SUITES["full"]["sources"].split(",") if a.sources == "all" else a.sources.split(",")
    path = a.checkpoint or shipped_model_path("palm_down")
    model = load_model(path)
    method = for_model(EvalConfig(suite="full", checkpoint=a.checkpoint), model)
    runs = {"expert": [], a.variant: []}
    joint_range = None
    for axis_name in ("+z", "-z"):
        axis = np.array(AXES[axis_name], dtype=np.float64)
        ex = Expert.load(shipped_expert_path("rotate", axis_name, "palm_down"))
        for seed in (int(s) for s in a.seeds.split(",")):

            def make_env(ex=ex, seed=seed):
                return expert_env(ex, "heldout", seed=seed, episodes=1, seconds=SECONDS, wrist="palm_down")

            ref = rollout(make_env(), lambda obs, _t, ex=ex: ex.act(obs), record_tips=True)
            env = make_env()
            joint_range = env.joint_range
            runs["expert"].append(run_episodes(env, model, axis, expert=ex))
            for src in sources:
                env = make_env()
                if a.variant == "prior":
                    cfg = ControllerConfig(seed=seed, mode=PRIMITIVES.index("rotate" + axis_name))
                else:  # the evaluated guided method, as dexgen eval --suite full builds it for this model
                    cfg = guided_config(method, seed=seed)
                ctrl = DexGenController(model, config=cfg, batch=env.num_envs)
                source = None if a.variant == "prior" else make_source(src, axis_name, 0.5, ref)
                runs[a.variant].append(run_episodes(env, model, axis, ctrl=ctrl, source=source, seed=seed,
                                                    squeeze=a.squeeze))  # fmt: skip
                if a.variant == "prior":
                    break  # the prior ignores the command: one run per axis and seed
            print(f"done {axis_name} seed {seed}", flush=True)
    print("medians per 5-s window (0-5 s ... 25-30 s)")
    for name, logs in runs.items():
        alive = np.concatenate([r["alive"] for r in logs], 1)
        print(f"{name}: {alive.shape[1]} episodes, holding at 10 / 20 / 30 s: "
              f"{alive[200].mean():.2f} / {alive[400].mean():.2f} / {alive[-1].mean():.2f}")  # fmt: skip
        figures = [windowed(r, model, np.array(AXES[("+z", "-z")[i // (len(logs) // 2)]]), joint_range)
                   for i, r in enumerate(logs)]  # fmt: skip
        for key in figures[0]:
            values = np.concatenate([f[key][0] for f in figures], 1)
            valid = np.concatenate([f[key][2] for f in figures], 1)
            cells = " ".join(f"{x:6.3f}" for x in window_medians(values, figures[0][key][1], valid))
            print(f"  {key:10s} {cells}")
        at_limit, squeeze = per_joint_late(logs, joint_range)
        print("  10-30 s, per joint: target at a limit " + " ".join(f"{x:.2f}" for x in at_limit))
        print("  10-30 s, per joint: target - position  " + " ".join(f"{x:.2f}" for x in squeeze))


if __name__ == "__main__":
    main()

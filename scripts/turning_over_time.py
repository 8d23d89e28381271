"""Diagnostic (not part of the package): how fast the object turns over an episode, guided DexGen vs the RL expert.

For the full suite's settings (palm down, held-out objects, +z and -z, 30 s episodes), it runs the expert and the
guided method (the shipped defaults) on each given command source and seed, and prints, per 5-s window, the median
object rotation rate about the commanded axis over the episodes still holding the object then (rad/s), for all
episodes and for those that hold it the whole 30 s, and the share of the guided decisions given the unknown mode.
The guided episodes are the same as ``dexgen eval --suite full --seeds S --sweep ""`` gives for those seeds.

    python scripts/turning_over_time.py --seeds 16,17,18 --sources all   # about 10 minutes on 2 cores
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dexgen.controller.dexgen_controller import (
    GUIDED_ALPHA,
    GUIDED_CANDIDATES,
    GUIDED_COMMAND_GAIN,
    GUIDED_RIGID_ALPHA_SCALE,
    ControllerConfig,
    DexGenController,
)
from dexgen.eval.teleop_eval import SUITES, _Live, _make_source
from dexgen.model.checkpoint import load_model, shipped_model_path
from dexgen.rl.evaluate import expert_env
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.sim.rollout import rollout
from dexgen.sim.tasks import AXES

WINDOW_STEPS = 100  # 5 s at the 20 Hz control rate
SECONDS = 30.0


def windowed(env, policy, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run one episode per simulation; (windows, N) mean rotation rate about ``axis`` while held (NaN after the
    drop) and (N,) held steps."""
    rates, alive = [], np.ones(env.num_envs, dtype=bool)

    def on_step(_t):
        rates.append(np.where(alive, env.last_state.object_angvel @ axis, np.nan))
        alive[:] &= env.episode_length > 0

    r = rollout(env, policy, on_step=on_step)
    w = np.array(rates)  # (steps, N), NaN once the object is gone
    windows = w[: len(w) // WINDOW_STEPS * WINDOW_STEPS].reshape(-1, WINDOW_STEPS, env.num_envs)
    held = np.isfinite(windows).sum(1)  # (windows, N) held steps per window
    out = np.where(held > 0, np.nansum(windows, 1) / np.maximum(held, 1), np.nan)
    return out, r.hold_steps


def report(name: str, rates: np.ndarray, hold: np.ndarray, *, only_all: bool = False) -> None:
    full = hold >= int(SECONDS * 20) - 1
    for label, sel in (("all", np.ones_like(full)), ("held 30 s", full))[: 1 if only_all else 2]:
        cells = " ".join(f"{np.nanmedian(rates[i, sel]):6.3f}" if np.isfinite(rates[i, sel]).any() else "   nan"
                         for i in range(rates.shape[0]))  # fmt: skip
        print(f"{name:8s} {label:10s} ({int(sel.sum()):3d} episodes): {cells}")


def run_seed(model, ex: Expert, axis: str, seed: int, sources: list[str]) -> tuple[list, list]:
    """The expert's and every source's guided (windowed rates, held steps, unknown-mode share per window)."""
    ax = np.array(AXES[axis], dtype=np.float64)

    def make_env():
        return expert_env(ex, "heldout", seed=seed, episodes=1, seconds=SECONDS, wrist="palm_down")

    def expert(obs, _t):
        return ex.act(obs)

    ref = rollout(make_env(), expert, record_tips=True)
    env = make_env()
    expert_out = [(*windowed(env, expert, ax), None)]
    guided_out = []
    for src in sources:
        env = make_env()
        cfg = ControllerConfig(alpha=GUIDED_ALPHA, rigid_alpha_scale=GUIDED_RIGID_ALPHA_SCALE, seed=seed,
                               candidates=GUIDED_CANDIDATES, mode_from_intent=True,
                               command_gain=GUIDED_COMMAND_GAIN)  # fmt: skip
        ctrl = DexGenController(model, config=cfg, batch=env.num_envs)
        modes, choose = [], ctrl._modes

        def spy(want, modes=modes, choose=choose):
            modes.append(choose(want))
            return modes[-1]

        ctrl._modes = spy  # records the mode of every decision (-1: unknown)
        w, h = windowed(env, _Live(env, _make_source(src, axis, 0.5, ref), seed, ctrl.act), ax)
        m = torch.stack(modes).numpy()  # (steps, N)
        steps = np.arange(len(m))[:, None]
        held = steps < h[None, :]
        share = [float(np.mean(m[(steps[:, 0] // WINDOW_STEPS == i)][held[steps[:, 0] // WINDOW_STEPS == i]] < 0))
                 if held[steps[:, 0] // WINDOW_STEPS == i].any() else np.nan for i in range(w.shape[0])]  # fmt: skip
        guided_out.append((w, h, share, src))
        print(f"done {axis} seed {seed} {src}", flush=True)
    return expert_out, guided_out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="16,17,18")
    p.add_argument("--sources", default="all", help="comma-separated, or all (the full suite's eight)")
    a = p.parse_args()
    sources = SUITES["full"]["sources"].split(",") if a.sources == "all" else a.sources.split(",")
    model = load_model(shipped_model_path("palm_down"))
    experts, guided = [], []
    for axis in ("+z", "-z"):
        ex = Expert.load(shipped_expert_path("rotate", axis, "palm_down"))
        for seed in (int(s) for s in a.seeds.split(",")):
            e, g = run_seed(model, ex, axis, seed, sources)
            experts += e
            guided += g
    print("median rotation rate about the commanded axis, rad/s, per 5-s window (0-5 s ... 25-30 s)")
    for name, runs in (("expert", experts), ("guided", guided)):
        report(name, np.concatenate([r[0] for r in runs], 1), np.concatenate([r[1] for r in runs]))
    for src in sources:
        runs = [r for r in guided if r[3] == src]
        rates, hold = np.concatenate([r[0] for r in runs], 1), np.concatenate([r[1] for r in runs])
        report(src.removeprefix("corrupted:")[:8], rates, hold, only_all=True)
    share = np.nanmean(np.array([r[2] for r in guided]), 0)
    print("guided decisions with the unknown mode, per window:", " ".join(f"{x:.2f}" for x in share))


if __name__ == "__main__":
    main()

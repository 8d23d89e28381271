"""Diagnostic (not part of the package): how fast the object turns over an episode, guided DexGen vs the RL expert.

For the full suite's settings (palm down, held-out objects, +z and -z, 30 s episodes), it runs the expert and the
guided method (the shipped defaults) on each given command source and seed, and prints per 5-s window the median,
over the episodes still holding the object then, of the object's rotation rate about the commanded axis (rad/s),
of the joints' drift from the grasp the episode started from (rad) and of the object's distance from the grasp
centre (mm), and of the rotation rate the guided method's candidate plans are predicted to give (the mean of the
best-of-8 candidates, through the model's rotation predictor): for all episodes, for those that hold it the whole
30 s and (the rates) per source; then the share of the guided decisions given the unknown mode. The guided
episodes are those of ``dexgen eval --suite full --seeds S --sweep ""`` for the same seeds.

    python scripts/turning_over_time.py --seeds 16,17,18 --sources all   # about 10 minutes on 2 cores

The figures in docs/results.md (2026-12-05) are of the palm-down model before data aggregation: add
``--checkpoint`` with its weights (``git show 8958d8d:src/dexgen/model/weights/dexgen_palm_down.safetensors`` and
its ``.json``) to reproduce them.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dexgen.controller.dexgen_controller import (
    DexGenController,
)
from dexgen.eval.teleop_eval import SUITES, EvalConfig, LiveCommandPolicy, for_model, guided_config, make_source
from dexgen.model.checkpoint import load_model, shipped_model_path
from dexgen.rl.evaluate import expert_env
from dexgen.rl.expert import Expert, shipped_expert_path
from dexgen.sim.constants import GRASP_CENTRE
from dexgen.sim.rollout import rollout
from dexgen.sim.tasks import AXES, joint_rms

WINDOW_STEPS = 100  # 5 s at the 20 Hz control rate
SECONDS = 30.0


def windowed(env, policy, axis: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run one episode per simulation; per 5-s window, means while the object is held (NaN after the drop), each
    (windows, N): ``rate`` the object's rotation rate about ``axis``, rad/s; ``drift`` the joints' RMS distance from
    the grasp the episode started from, rad; ``offset`` the object centre's distance from the grasp centre, mm.
    Also (N,) held steps."""
    logs, alive = {"rate": [], "drift": [], "offset": []}, np.ones(env.num_envs, dtype=bool)

    def on_step(_t):
        s = env.last_state
        for key, value in (("rate", s.object_angvel @ axis), ("drift", joint_rms(s.q, s.grasp_q)),
                           ("offset", 1000.0 * np.linalg.norm(s.object_pos - GRASP_CENTRE, axis=-1))):  # fmt: skip
            logs[key].append(np.where(alive, value, np.nan))
        alive[:] &= env.episode_length > 0

    r = rollout(env, policy, on_step=on_step)
    out = {}
    for key, values in logs.items():
        w = np.array(values)  # (steps, N), NaN once the object is gone
        windows = w[: len(w) // WINDOW_STEPS * WINDOW_STEPS].reshape(-1, WINDOW_STEPS, env.num_envs)
        held = np.isfinite(windows).sum(1)  # (windows, N) held steps per window
        out[key] = np.where(held > 0, np.nansum(windows, 1) / np.maximum(held, 1), np.nan)
    return out, r.hold_steps


def report(name: str, values: np.ndarray, hold: np.ndarray, *, only_all: bool = False) -> None:
    full = hold >= int(SECONDS * 20) - 1
    for label, sel in (("all", np.ones_like(full)), ("held 30 s", full))[: 1 if only_all else 2]:
        cells = " ".join(f"{np.nanmedian(values[i, sel]):6.3f}" if np.isfinite(values[i, sel]).any() else "   nan"
                         for i in range(values.shape[0]))  # fmt: skip
        print(f"{name:8s} {label:10s} ({int(sel.sum()):3d} episodes): {cells}")


def run_seed(model, method: EvalConfig, ex: Expert, axis: str, seed: int,
             sources: list[str]) -> tuple[list, list]:  # fmt: skip
    """The expert's (windowed figures, held steps) and every source's guided (windowed figures, held steps, source)."""
    ax = np.array(AXES[axis], dtype=np.float64)

    def make_env():
        return expert_env(ex, "heldout", seed=seed, episodes=1, seconds=SECONDS, wrist="palm_down")

    def expert(obs, _t):
        return ex.act(obs)

    ref = rollout(make_env(), expert, record_tips=True)
    env = make_env()
    expert_out = [windowed(env, expert, ax)]
    guided_out = []
    for src in sources:
        env = make_env()
        cfg = guided_config(method, seed=seed)  # the evaluated method, as dexgen eval builds it
        ctrl = DexGenController(model, config=cfg, batch=env.num_envs)
        modes, choose = [], ctrl._modes

        def spy(want, modes=modes, choose=choose):
            modes.append(choose(want))
            return modes[-1]

        ctrl._modes = spy  # records the mode of every decision (-1: unknown)
        planned, predict = [], model.predict_rotation

        def spy_rotation(obs, dx, planned=planned, predict=predict, n=env.num_envs, k=cfg.candidates):
            out = predict(obs, dx)
            if len(out) == n * k:  # the ranking of the candidates, not the reading of a command
                planned.append((out.view(n, k, 3) @ torch.as_tensor(ax, dtype=out.dtype)).mean(1))
            return out

        model.predict_rotation = spy_rotation  # records the candidates' predicted rotation about the axis
        try:
            w, h = windowed(env, LiveCommandPolicy(env, make_source(src, axis, 0.5, ref), seed, ctrl.act), ax)
        finally:
            del model.predict_rotation
        steps = np.arange(len(modes))
        held = steps[:, None] < h[None, :]  # (steps, N)
        for key, per_step in (("unknown", torch.stack(modes).numpy() < 0), ("planned", torch.stack(planned).numpy())):
            w[key] = np.full_like(w["rate"], np.nan)
            for i in range(len(w["rate"])):
                inside = held & (steps // WINDOW_STEPS == i)[:, None]
                w[key][i] = np.where(inside.any(0), np.where(inside, per_step, 0).sum(0) / np.maximum(inside.sum(0), 1),
                                     np.nan)  # fmt: skip
        guided_out.append((w, h, src))
        print(f"done {axis} seed {seed} {src}", flush=True)
    return expert_out, guided_out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="16,17,18")
    p.add_argument("--sources", default="all", help="comma-separated, or all (the full suite's eight)")
    p.add_argument("--checkpoint", default=None, help="model weights (default: the shipped palm-down model)")
    a = p.parse_args()
    sources = SUITES["full"]["sources"].split(",") if a.sources == "all" else a.sources.split(",")
    path = a.checkpoint or shipped_model_path("palm_down")
    model = load_model(path)
    method = for_model(EvalConfig(suite="full", checkpoint=a.checkpoint), model)
    experts, guided = [], []
    for axis in ("+z", "-z"):
        ex = Expert.load(shipped_expert_path("rotate", axis, "palm_down"))
        for seed in (int(s) for s in a.seeds.split(",")):
            e, g = run_seed(model, method, ex, axis, seed, sources)
            experts += e
            guided += g

    def cat(runs, key):
        return np.concatenate([r[0][key] for r in runs], 1), np.concatenate([r[1] for r in runs])

    for key, title in (("rate", "rotation rate about the commanded axis, rad/s"),
                       ("planned", "rotation rate the guided candidates are predicted to give (mean of 8), rad/s"),
                       ("drift", "joints' RMS distance from the episode's starting grasp, rad"),
                       ("offset", "object centre's distance from the grasp centre, mm")):  # fmt: skip
        print(f"median {title}, per 5-s window (0-5 s ... 25-30 s)")
        for name, runs in (("expert", experts), ("guided", guided)):
            if key in runs[0][0]:
                report(name, *cat(runs, key))
        if key in ("rate", "planned"):
            for src in sources:
                report(src.removeprefix("corrupted:")[:8], *cat([r for r in guided if r[2] == src], key), only_all=True)
    share = np.nanmean(np.concatenate([r[0]["unknown"] for r in guided], 1), 1)
    print("guided decisions with the unknown mode, per window:", " ".join(f"{x:.2f}" for x in share))


if __name__ == "__main__":
    main()

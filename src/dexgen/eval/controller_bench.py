"""``dexgen bench controller``: the latency of one control decision (observation in, joint targets out) at batch 1
on one CPU thread: the guided method (the shipped one), the same with one plan per decision, and unguided, on
observations recorded from the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from dexgen.checks import check_int
from dexgen.controller.dexgen_controller import (
    SHIPPED_METHOD,
    ControllerConfig,
    DexGenController,
    fit_to_model,
    frame_from_policy_obs,
)
from dexgen.model.checkpoint import load_model, shipped_model_path
from dexgen.sim.hand import check_wrist
from dexgen.teleop.commands import KinematicIntent


@dataclass
class BenchControllerConfig:
    """Measure latency_ms_p50 / _p95 of one control decision (batch 1, one thread): the guided method, the same with
    one plan per decision (one_plan_*, where it samples several) and unguided (unguided_*)."""

    checkpoint: str | None = None
    """Model weights; None: the shipped model of the wrist orientation."""
    wrist: str = "palm_up"
    """Wrist orientation of the hand whose observations are replayed (and of the shipped model)."""
    decisions: int = 500
    """Timed decisions per variant (after a warm-up)."""
    warmup: int = 30
    """Untimed decisions first."""
    guided: ControllerConfig = field(default_factory=lambda: SHIPPED_METHOD)
    """The guided method timed: the shipped one unless a flag here changes a setting (e.g.
    ``--guided.candidates 16``), fitted to the model; its DDIM steps apply to the unguided variant too."""
    threads: int = 1
    """Torch threads."""
    seed: int = 0
    """Seed of the recorded observations and of sampling."""
    json: bool = False
    """Print one JSON object."""

    def __post_init__(self) -> None:
        check_wrist("wrist", self.wrist)
        check_int("decisions", self.decisions, ge=1)
        check_int("warmup", self.warmup, ge=0)
        check_int("threads", self.threads, ge=1)


def recorded_frames(model, cfg: BenchControllerConfig, n: int) -> np.ndarray:
    """(n, 44) observation frames of one hand run by the unguided controller from a cached grasp."""
    from dexgen.sim.env import EnvConfig, HandEnv

    env = HandEnv(EnvConfig(num_envs=1, objects="cube_60", wrist=cfg.wrist, action_mode="absolute", seed=cfg.seed,
                            num_threads=1))  # fmt: skip
    ctrl = DexGenController(model, config=ControllerConfig(seed=cfg.seed))
    frames, obs = [], env.get_observations()
    for _ in range(n):
        frame = frame_from_policy_obs(obs["policy"])[0]
        frames.append(frame)
        obs, _, done, _ = env.step(ctrl.act(frame)[None])
        if done[0]:
            ctrl.reset()
    return np.array(frames)


def _percentiles(latencies_s: list[float]) -> dict:
    ms = 1000.0 * np.array(latencies_s)
    return {"latency_ms_p50": float(np.percentile(ms, 50)), "latency_ms_p95": float(np.percentile(ms, 95)),
            "latency_ms_mean": float(ms.mean()), "latency_ms_max": float(ms.max())}  # fmt: skip


def bench_controller(cfg: BenchControllerConfig) -> dict:
    torch.set_num_threads(cfg.threads)
    path = cfg.checkpoint or shipped_model_path(cfg.wrist)
    model = load_model(path, wrist=cfg.wrist)
    frames = recorded_frames(model, cfg, 100)
    out: dict = {"checkpoint": str(path), "wrist": cfg.wrist, "threads": torch.get_num_threads(),
                 "batch": 1, "num_inference_steps": cfg.guided.num_inference_steps or model.cfg.num_inference_steps,
                 "decisions": cfg.decisions}  # fmt: skip
    # a typical guided command: turn the fingertips about palm z through the grasp centre at 1 rad/s
    intent = KinematicIntent("+z", 1.0, horizon=model.cfg.horizon, centre="nominal")
    guided = replace(fit_to_model(cfg.guided, model), seed=cfg.seed)
    variants = {"guided": guided}
    if guided.candidates > 1:
        variants["one_plan"] = replace(guided, candidates=1)
    variants["unguided"] = ControllerConfig(seed=cfg.seed, num_inference_steps=guided.num_inference_steps)
    out["alpha"], out["candidates"] = guided.alpha, guided.candidates
    for name, ctrl_cfg in variants.items():
        ctrl = DexGenController(model, config=ctrl_cfg)
        for i in range(cfg.warmup + cfg.decisions):
            frame = frames[i % len(frames)]
            command = intent.command(i, frame[None, 32:44].reshape(1, 4, 3))[0] if ctrl_cfg.alpha > 0 else None
            if i == cfg.warmup:
                ctrl.latencies_s.clear()
            ctrl.act(frame, command)
        stats = _percentiles(ctrl.latencies_s)
        out.update(stats if name == "guided" else {f"{name}_{k}": v for k, v in stats.items()})
    return out

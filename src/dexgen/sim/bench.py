"""Simulator throughput: the full environment API against bare ``mujoco.batch`` stepping of the same model."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np

from dexgen.checks import check_int, check_number
from dexgen.sim import constants as C
from dexgen.sim.env import EnvConfig, HandEnv
from dexgen.sim.hand_batch import HandBatch


@dataclass
class BenchSimConfig:
    """Measure env_steps_per_s (control steps per second summed over envs), raw_steps_per_s and their ratio."""

    envs: int = 128
    """Number of simulations."""
    seconds: float = 10.0
    """Wall-clock seconds of each of the two measurements."""
    task: str = "rotate"
    """Task the environment runs."""
    objects: str = "train"
    """Object set or names."""
    wrist: str = "palm_up"
    """Wrist orientation."""
    hand: str = C.DEFAULT_HAND
    """Hand model (allegro or legacy)."""
    threads: int = 0
    """Threads; 0 uses every core."""
    substeps: int = 10
    """Physics steps (5 ms) per control step."""
    seed: int = 0
    """Seed of the environment and the random actions."""
    json: bool = False
    """Print one JSON object instead of a table."""

    def __post_init__(self) -> None:
        check_int("envs", self.envs, ge=1)
        check_number("seconds", self.seconds, gt=0)
        check_int("threads", self.threads, ge=0)
        check_int("substeps", self.substeps, ge=1)


def _timed(fn, seconds: float) -> tuple[int, float]:
    """Call ``fn`` until ``seconds`` have passed; returns (calls, elapsed seconds)."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        calls += 1
    return calls, elapsed


def bench_sim(cfg: BenchSimConfig) -> dict:
    """Run both measurements; returns the result dict."""
    env_cfg = EnvConfig(
        num_envs=cfg.envs, task=cfg.task, objects=cfg.objects, wrist=cfg.wrist, hand=cfg.hand,
        substeps=cfg.substeps, num_threads=cfg.threads, seed=cfg.seed,
    )  # fmt: skip
    env = HandEnv(env_cfg)
    rng = np.random.default_rng(cfg.seed)
    # small random target increments, drawn in advance so the measurement is of the environment only
    actions = rng.normal(0.0, 0.02, (64, cfg.envs, env.num_actions))
    k = 0

    def env_step() -> None:
        nonlocal k
        env.step(actions[k % len(actions)])
        k += 1

    for _ in range(5):
        env_step()
    env_calls, env_elapsed = _timed(env_step, cfg.seconds)

    raw = HandBatch(env.env_objects, wrist=env_cfg.wrist, hand=env_cfg.hand, num_threads=cfg.threads)
    raw_env = HandEnv(replace(env_cfg, num_envs=cfg.envs))  # same grasps and randomization draws as the env start
    raw.batch.state[:] = raw_env.sims.batch.state
    raw.models[:] = raw_env.sims.models
    raw.models_changed()
    del raw_env

    def raw_step() -> None:
        raw.batch.step(nstep=cfg.substeps)

    for _ in range(5):
        raw_step()
    raw_calls, raw_elapsed = _timed(raw_step, cfg.seconds)

    env_rate = env_calls * cfg.envs / env_elapsed
    raw_rate = raw_calls * cfg.envs / raw_elapsed
    return {
        "envs": cfg.envs,
        "threads": env.sims.num_threads,
        "cpus": os.cpu_count(),
        "substeps": cfg.substeps,
        "control_hz": 1.0 / env.dt,
        "env_steps_per_s": round(env_rate, 1),
        "raw_steps_per_s": round(raw_rate, 1),
        "ratio": round(env_rate / raw_rate, 3),
        "physics_steps_per_s": round(env_rate * cfg.substeps, 1),
        "seconds": cfg.seconds,
    }

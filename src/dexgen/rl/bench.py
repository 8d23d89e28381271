"""End-to-end PPO throughput: collection plus update, for the default training config."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace

from dexgen.checks import check_int
from dexgen.rl.train import TrainExpertConfig, train_expert
from dexgen.sim import constants as C


@dataclass
class BenchPPOConfig:
    """Measure env_steps_per_s of end-to-end PPO training (collection + update) with the default config."""

    iterations: int = 10
    """PPO iterations to time (after one warm-up iteration)."""
    envs: int | None = None
    """Environments; None uses the training default."""
    wrist: str = "palm_up"
    """Wrist orientation."""
    hand: str = C.DEFAULT_HAND
    """Hand model (allegro or legacy)."""
    seed: int = 0
    """Seed."""
    json: bool = False
    """Print one JSON object."""

    def __post_init__(self) -> None:
        check_int("iterations", self.iterations, ge=1)
        check_int("envs", self.envs, ge=1, optional=True)


def bench_ppo(cfg: BenchPPOConfig) -> dict:
    base = TrainExpertConfig(seed=cfg.seed, wrist=cfg.wrist, hand=cfg.hand)
    if cfg.envs is not None:
        base = replace(base, envs=cfg.envs)
    with tempfile.TemporaryDirectory() as tmp:
        warm = train_expert(replace(base, iterations=1, out=tmp, run_name="warm"), progress=False)
        out = train_expert(
            replace(base, iterations=cfg.iterations, out=tmp, run_name="bench", save_interval=10**9), progress=False
        )
    del warm
    return {
        "envs": base.envs,
        "steps_per_env": base.ppo.steps_per_env,
        "iterations": cfg.iterations,
        "env_steps": out["env_steps"],
        "wall_s": out["wall_s"],
        "env_steps_per_s": round(out["env_steps"] / out["wall_s"], 1),
    }

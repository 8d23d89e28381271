"""Turning a training run into a shippable expert: actor weights, evaluation figures and a JSON record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from dexgen.checks import check_int, check_number
from dexgen.provenance import revision
from dexgen.rl.evaluate import EvalExpertConfig, evaluate_axes
from dexgen.rl.expert import expert_name, shipped_expert_path
from dexgen.rl.run_expert import expert_from_checkpoint, reproduce_chain, reproduce_command
from dexgen.sim.constants import DEFAULT_WRIST

__all__ = ["ExportExpertConfig", "export_expert", "expert_from_checkpoint", "reproduce_chain", "reproduce_command"]


@dataclass
class ExportExpertConfig:
    """Export a training run's actor with a JSON record (command, seed, revision, steps, time, eval figures)."""

    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """Training run directory (holds last.pt)."""
    ship: bool = False
    """Write into the package's shipped experts instead of the run directory."""
    episodes: int = 8
    """Evaluation episodes per object (training and held-out sets)."""
    seconds: float = 20.0
    """Evaluation episode length, seconds."""
    seed: int = 1
    """Evaluation seed."""
    threads: int = 0
    """Simulation threads; 0 uses every core."""

    def __post_init__(self) -> None:
        check_int("episodes", self.episodes, ge=1)
        check_number("seconds", self.seconds, gt=0)
        check_int("threads", self.threads, ge=0)


def export_expert(cfg: ExportExpertConfig) -> dict:
    expert = expert_from_checkpoint(Path(cfg.run_dir) / "last.pt")
    gravity = expert.record["final_training_stats"].get("gravity_scale", 1.0)
    if cfg.ship and gravity < 1.0:
        raise ValueError(f"{cfg.run_dir} trains at {gravity:g} of full gravity so far (its gravity curriculum): "
                         f"ship it once it trains at full gravity")  # fmt: skip
    evals = {}
    for objects in ("train", "heldout"):
        ev = EvalExpertConfig(task=expert.task, axis=expert.axis, episodes=cfg.episodes, seconds=cfg.seconds,
                              objects=objects, seed=cfg.seed, threads=cfg.threads)  # fmt: skip
        evals[objects] = evaluate_axes(expert, ev)
    wrist = "" if expert.wrist == DEFAULT_WRIST else f" --wrist {expert.wrist}"
    axis = "" if expert.task == "grasp_to_grasp" else f" --axis={expert.axis}"
    expert.record["eval"] = {
        "command": f"dexgen eval-expert --task {expert.task}{axis}{wrist} --episodes {cfg.episodes} "
        f"--seconds {cfg.seconds} --seed {cfg.seed} --objects train|heldout",
        "export_revision": revision(),
        **evals,
    }
    name = expert_name(expert.task, expert.axis, expert.wrist)
    if cfg.ship:
        path = shipped_expert_path(expert.task, expert.axis, expert.wrist)
    else:
        path = Path(cfg.run_dir) / f"{name}.safetensors"
    expert.save(path)
    return {"path": str(path), **{k: ev.get("overall", ev.get("per_axis")) for k, ev in evals.items()}}

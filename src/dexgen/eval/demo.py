"""``dexgen demo``: the shipped models on a short raw-teleop vs guided-DexGen comparison, with a table, the
guidance-strength plot, the holding-over-time plot and a side-by-side video (the README's main command)."""

from __future__ import annotations

from dataclasses import dataclass

from dexgen.eval.teleop_eval import ALPHA, EvalConfig, run_eval


@dataclass
class DemoConfig:
    """Run the shipped models on a short raw-vs-guided comparison; print the table, write a video and a plot."""

    objects: str = "heldout"
    """Object set or names (held-out objects: never seen by the experts or the model)."""
    seconds: float = 10.0
    """Horizon of each episode, seconds."""
    seed: int = 1
    """Seed of grasps, physics, command corruption and sampling."""
    alpha: float = ALPHA
    """Guidance strength."""
    out: str = "outputs/demo"
    """Directory of the table, plot and video."""
    json: bool = False
    """Print one JSON object."""

    def __post_init__(self) -> None:
        EvalConfig(objects=self.objects, seconds=self.seconds, alpha=self.alpha)  # the same checks as dexgen eval


def run_demo(cfg: DemoConfig) -> dict:
    """The demo command: the quick evaluation suite with a video, on the shipped models."""
    return run_eval(EvalConfig(suite="quick", objects=cfg.objects, seconds=cfg.seconds, seeds=str(cfg.seed),
                               alpha=cfg.alpha, out=cfg.out, video=True, json=cfg.json))  # fmt: skip

"""``dexgen demo``: the shipped models on a short raw-teleop vs guided-DexGen comparison, with a table, the
guidance-strength plot, the holding-over-time plot and a side-by-side video (the README's main command)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from dexgen.controller.dexgen_controller import SHIPPED_METHOD
from dexgen.eval.teleop_eval import EvalConfig, run_eval


@dataclass
class DemoConfig:
    """Run the shipped models on a short raw-vs-guided comparison; print the table, write a video and a plot."""

    objects: str = "heldout"
    """Object set or names (held-out objects: never seen by the experts or the model)."""
    seconds: float = 10.0
    """Horizon of each episode, seconds."""
    seed: int = 1
    """Seed of grasps, physics, command corruption and sampling."""
    alpha: float = SHIPPED_METHOD.alpha
    """Guidance strength of the guided method (the shipped method's by default)."""
    out: str = "outputs/demo"
    """Directory of the table, plot and video."""
    json: bool = False
    """Print one JSON object."""

    def __post_init__(self) -> None:
        self.eval_config()  # the same checks as dexgen eval

    def eval_config(self) -> EvalConfig:
        """The quick suite on this seed, with a video: the evaluation the demo runs."""
        return EvalConfig(suite="quick", objects=self.objects, seconds=self.seconds, seeds=str(self.seed),
                          guided=replace(SHIPPED_METHOD, alpha=self.alpha), out=self.out, video=True,
                          json=self.json)  # fmt: skip


def run_demo(cfg: DemoConfig) -> dict:
    """The demo command: the quick evaluation suite with a video, on the shipped models."""
    return run_eval(cfg.eval_config())

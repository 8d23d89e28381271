"""``dexgen eval``: the teleoperation suites (``teleop_eval``) or the goal-reaching ones (``operator_eval``)."""

from __future__ import annotations

from dexgen.eval.operator_eval import run_operator_command
from dexgen.eval.teleop_eval import OPERATOR_SUITES, EvalConfig
from dexgen.eval.teleop_eval import run_eval as run_teleop_eval


def run_eval(cfg: EvalConfig) -> dict:
    """Run the suite ``cfg`` names; returns its summary."""
    return run_operator_command(cfg) if cfg.suite in OPERATOR_SUITES else run_teleop_eval(cfg)

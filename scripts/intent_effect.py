"""Diagnostic (not part of the package): does a DexGen model with an intent input do what the intent asks?

On validation windows of the model's own dataset split (the dataset, validation share and split seed of its record),
it samples the fingertip motion Δx of every window three ways: with the intent "turn about the palm AXIS at +SPEED
rad/s", with the intent at -SPEED, and without an intent (the unconditional prior), each with the same initial noise,
and prints for each, averaged over the windows (rad/s, about AXIS, palm frame):

- ``predicted``: the object rotation the model's own rotation predictor gives for the sampled Δx;
- ``rigid``: the rigid turn of the fingertips over the horizon (a least-squares fit, ``command_rotation``; for
  finger gaiting it says little about the object, the predictor more);
- ``against``: ``predicted`` over the windows whose recorded motion turned the other way than the intent (at
  least 0.1 rad/s about AXIS), where the observation history points the other way;

and the same two readings of the recorded Δx (``data``), whose realized twist is the intent label. ``--scale``
sets the classifier-free guidance scale of the intent.

    python scripts/intent_effect.py runs/model/NAME/model.safetensors --axis z --speed 0.4 --windows 2000 --seed 0
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from dexgen.controller.guidance import command_rotation
from dexgen.data.schema import axis_vector
from dexgen.data.windows import MotionWindows
from dexgen.model.checkpoint import load_model
from dexgen.model.dexgen_model import DexGenModel

BATCH = 512
"""Windows sampled at once."""

MIN_TURN = 0.1
"""A window's recorded motion turns one way about the axis when its realized angular velocity exceeds this, rad/s."""


def validation_windows(model: DexGenModel, *, windows: int, seed: int) -> dict[str, np.ndarray]:
    """Up to ``windows`` validation windows (drawn by a generator seeded with ``seed``) of the model's dataset split,
    as ``MotionWindows.batch`` gives them (``obs`` (N, H, D), ``dx`` (N, T, 4, 3) m, ``intent`` (N, 6), ...)."""
    data = model.record["dataset"]
    val = MotionWindows(data["path"], history=model.cfg.history, horizon=model.cfg.horizon, split="val",
                        val_fraction=data["val_fraction"], seed=data["split_seed"],
                        gravity=model.cfg.gravity_obs)  # fmt: skip
    if not val.has_intent:
        raise ValueError(f"{data['path']} does not record the realized object twist (schema version 1)")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(val), size=min(windows, len(val)), replace=False))
    return val.batch(idx)


@torch.inference_mode()
def measure(model: DexGenModel, w: dict[str, np.ndarray], *, axis: str, speed: float, seed: int,
            scale: float = 1.0) -> dict[str, dict[str, float]]:  # fmt: skip
    """The mean rotation about ``axis`` ("x", "y" or "z"), rad/s, of Δx sampled for windows ``w`` with the intent
    +speed and -speed about it and without one (``predicted``, ``rigid``, ``against``; see the module docstring),
    and of the recorded Δx (``data``). The initial noise of window i is the same in every condition."""
    if not model.cfg.intent:
        raise ValueError("this model has no intent input")
    unit = torch.from_numpy(axis_vector(f"+{axis}"))
    obs, dx = torch.from_numpy(w["obs"]), torch.from_numpy(w["dx"])
    recorded = torch.from_numpy(w["intent"][:, :3]) @ unit
    tips = obs[:, -1, 32:44].reshape(-1, 4, 3)
    noise = torch.randn(dx.shape, generator=torch.Generator().manual_seed(seed))

    def readings(motion: torch.Tensor, sign: float) -> dict[str, float]:
        pred = model.predict_rotation(obs, motion) @ unit
        other = recorded * sign < -MIN_TURN if sign else torch.zeros_like(recorded, dtype=torch.bool)
        out = {"predicted": float(pred.mean()), "rigid": float((command_rotation(motion, tips) @ unit).mean())}
        if other.any():
            out["against"] = float(pred[other].mean())
            out["against_windows"] = int(other.sum())
        return out

    out = {"data": readings(dx, 0.0)}
    for name, sign in (("+", 1.0), ("-", -1.0), ("none", 0.0)):
        intent = None if not sign else torch.cat([sign * speed * unit, torch.zeros(3)])
        parts = [model.sample(obs[i : i + BATCH], noise=noise[i : i + BATCH], intent=intent, intent_scale=scale)
                 for i in range(0, len(obs), BATCH)]  # fmt: skip
        out[name] = readings(torch.cat(parts), sign)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="model weights (.safetensors with its .json record) trained with an intent")
    p.add_argument("--axis", default="z", choices=("x", "y", "z"), help="palm axis of the intended turn")
    p.add_argument("--speed", type=float, default=0.4, help="intended turning speed, rad/s")
    p.add_argument("--scale", type=float, default=1.0, help="classifier-free guidance scale of the intent")
    p.add_argument("--windows", type=int, default=2000, help="validation windows evaluated")
    p.add_argument("--seed", type=int, default=0, help="seed of the window draw and the sampling noise")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint)
    w = validation_windows(model, windows=args.windows, seed=args.seed)
    result = {"windows": len(w["obs"]), "axis": args.axis, "speed": args.speed, "scale": args.scale,
              "seed": args.seed, **measure(model, w, axis=args.axis, speed=args.speed, seed=args.seed,
                                           scale=args.scale)}  # fmt: skip
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

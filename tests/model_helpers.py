"""Tiny models and the shipped sample dataset for the model, controller and eval tests."""

from __future__ import annotations

from pathlib import Path

import torch

from dexgen.model.config import ModelConfig
from dexgen.model.dexgen_model import DexGenModel

SAMPLE_DATASET = Path(__file__).parents[1] / "src" / "dexgen" / "data" / "sample" / "rotz_10k.h5"
"""10k transitions of the shipped rotation experts (``dexgen collect``), committed for tests and examples."""

TINY = ModelConfig(hidden=32, blocks=2, cond_dim=32, idm_hidden=32, idm_layers=2, num_train_timesteps=20,
                   num_inference_steps=4, rotation_hidden=32, prediction_type="epsilon",
                   timestep_spacing="leading")  # fmt: skip
"""A model small enough to train for a few steps in a test; it predicts ε and samples with "leading" DDIM spacing,
as the shipped models do (with "trailing" the last step keeps noise, so guidance still acts there)."""


def tiny_model(*, seed: int = 0, **overrides) -> DexGenModel:
    """A randomly initialized tiny model with non-trivial normalizers."""
    torch.manual_seed(seed)
    cfg = ModelConfig(**{**TINY.to_dict(), **overrides})
    model = DexGenModel(cfg)
    g = torch.Generator().manual_seed(seed)
    model.obs_norm.set(torch.rand(cfg.obs_dim, generator=g), 0.5 + torch.rand(cfg.obs_dim, generator=g))
    model.dx_norm.set(0.001 * torch.randn(cfg.horizon, 4, 3, generator=g),
                      0.002 + 0.01 * torch.rand(cfg.horizon, 4, 3, generator=g))  # fmt: skip
    model.delta_norm.set(torch.zeros(16), 0.02 * torch.ones(16))
    if model.rotation is not None:
        model.angvel_norm.set(torch.zeros(3), 0.5 * torch.ones(3))
    return model.eval()


def random_obs(batch: int, cfg: ModelConfig, *, seed: int = 0) -> torch.Tensor:
    """(batch, H, D) plausible observation histories (joints within limits, fingertips near the palm)."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(batch, cfg.history, cfg.obs_dim, generator=g)
    obs[..., 32:] = 0.05 * obs[..., 32:]
    return obs


def write_turning_dataset(path, *, episodes: int, steps: int, omega: float, seed: int):
    """A dataset (schema of this code) of fingertips turning rigidly about the palm's z axis at +omega or -omega
    rad/s (the sign drawn per episode, the object turning with them), from a random start angle: one observation
    frame shows where the fingertips are but not which way they turn, so only the intent tells."""
    import numpy as np

    from data_helpers import FINGER_BASES
    from dexgen.data.schema import PRIMITIVES, primitive_param
    from dexgen.data.store import EpisodeWriter

    rng = np.random.default_rng(seed)
    centre = FINGER_BASES.mean(axis=0)
    with EpisodeWriter(path, command="tests", seed=seed) as writer:
        for _ in range(episodes):
            w = omega * rng.choice([-1.0, 1.0])
            angle = rng.uniform(0, 2 * np.pi) + w * 0.05 * np.arange(steps)
            c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
            rel = FINGER_BASES - centre  # (4, 3) about the centre, turned about z
            tips = centre + np.stack((c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1],
                                      np.broadcast_to(rel[:, 2], (steps, 4))), axis=-1)  # fmt: skip
            q = rng.uniform(0.2, 0.6, (steps, 16))
            name = "rotate+z" if w > 0 else "rotate-z"
            zeros3 = np.zeros((steps, 3))
            writer.append_episode({
                "joint_pos": q, "joint_target": q, "action": np.zeros((steps, 16)), "fingertip_pos": tips,
                "primitive_id": np.full(steps, PRIMITIVES.index(name)),
                "primitive_param": np.repeat(primitive_param([0.0, 0.0, np.sign(w)])[None], steps, axis=0),
                "object_pos": np.repeat(centre[None], steps, axis=0),
                "object_quat": np.stack((np.cos(angle / 2), 0 * angle, 0 * angle, np.sin(angle / 2)), axis=-1),
                "object_linvel": zeros3, "object_angvel": np.repeat([[0.0, 0.0, w]], steps, axis=0),
                "dropped": np.zeros(steps, dtype=bool),
                "realized_angvel": np.repeat([[0.0, 0.0, w]], steps, axis=0), "realized_linvel": zeros3,
                "gravity_dir": np.repeat([[0.0, 0.0, -1.0]], steps, axis=0),
            }, object_name="cube_60", wrist="palm_up")  # fmt: skip
    return path


def turn_rate(obs, dx, *, dt: float = 0.05):
    """The mean rate (B,) rad/s at which fingertip motion dx (B, T, 4, 3) turns the fingertips about the palm's z
    axis through their centre, from observation histories obs (B, H, D) (fingertips at features 32:44 of the newest
    frame): the angle of each fingertip about the centre at the last step of dx against now, averaged."""
    tips = obs[:, -1, 32:44].reshape(-1, 4, 3)
    centre = tips.mean(dim=1, keepdim=True)
    now, then = tips - centre, tips + dx[:, -1] - centre
    turned = torch.atan2(now[..., 0] * then[..., 1] - now[..., 1] * then[..., 0],
                         now[..., 0] * then[..., 0] + now[..., 1] * then[..., 1])  # fmt: skip
    return turned.mean(dim=1) / (dx.shape[1] * dt)

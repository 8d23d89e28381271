"""Tiny models and the shipped sample dataset for the model, controller and eval tests."""

from __future__ import annotations

from pathlib import Path

import torch

from dexgen.model.config import ModelConfig
from dexgen.model.dexgen_model import DexGenModel

SAMPLE_DATASET = Path(__file__).parents[1] / "src" / "dexgen" / "data" / "sample" / "rotz_10k.h5"
"""10k transitions of the shipped rotation experts (``dexgen collect``), committed for tests and examples."""

TINY = ModelConfig(hidden=32, blocks=2, cond_dim=32, idm_hidden=32, idm_layers=2, num_train_timesteps=20,
                   num_inference_steps=4, rotation_hidden=32)  # fmt: skip
"""A model small enough to train for a few steps in a test."""


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

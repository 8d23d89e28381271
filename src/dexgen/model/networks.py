"""The two networks: a FiLM-conditioned MLP-ResNet denoiser for Δx and an MLP inverse dynamics model.

Both work in normalized units (see ``dexgen.model.normalizer``); ``dexgen.model.dexgen_model`` wraps them with the
normalizers and the diffusion schedule.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dexgen.model.config import ModelConfig


def timestep_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of diffusion timesteps t (B,) (integers or floats)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat((torch.cos(args), torch.sin(args)), dim=-1)


class FiLMBlock(nn.Module):
    """Pre-norm residual block whose hidden activation is scaled and shifted by the conditioning vector."""

    def __init__(self, hidden: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.film = nn.Linear(cond_dim, 2 * hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.act = nn.Mish()
        # start as the identity: the residual branch's last layer is zero
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.apply_film(h, self.film(cond))

    def apply_film(self, h: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """The block with precomputed FiLM parameters ``film = self.film(cond)`` (B, 2 * hidden)."""
        scale, shift = film.chunk(2, dim=-1)
        z = self.act(self.fc1(self.norm(h)))
        z = z * (1.0 + scale) + shift
        return h + self.fc2(self.act(z))


class Denoiser(nn.Module):
    """ε (or clean-sample) prediction for a noisy normalized Δx.

    ``forward(x, t, obs, mode, intent)``: x (B, T, 4, 3) normalized noisy Δx, t (B,) diffusion timesteps, obs
    (B, H, D) normalized observation history, mode (B,) int64 or None, intent (B, intent_dim + 1) or None for a
    model with an intent input: the normalized intent times its flag, then the flag (1: given, 0: the null
    intent; see ``DexGenModel.intent_condition``); returns (B, T, 4, 3).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        sample_dim = cfg.horizon * 12
        self.time_dim = 64
        mode_dim = 32 if cfg.mode != "none" else 0
        rows = cfg.num_modes + (cfg.unknown_mode is not None)
        self.mode_embed = nn.Embedding(rows, mode_dim) if mode_dim else None
        self.intent_width = cfg.intent_dim + 1 if cfg.intent else 0
        self.cond = nn.Sequential(
            nn.Linear(cfg.history * cfg.obs_dim + self.time_dim + mode_dim + self.intent_width, cfg.cond_dim),
            nn.Mish(),
            nn.Linear(cfg.cond_dim, cfg.cond_dim),
            nn.Mish(),
        )
        self.inp = nn.Linear(sample_dim, cfg.hidden)
        self.blocks = nn.ModuleList(FiLMBlock(cfg.hidden, cfg.cond_dim) for _ in range(cfg.blocks))
        self.out_norm = nn.LayerNorm(cfg.hidden)
        self.out = nn.Linear(cfg.hidden, sample_dim)

    def condition(self, t: torch.Tensor, obs: torch.Tensor, mode: torch.Tensor | None,
                  intent: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """The conditioning vector (B, cond_dim)."""
        parts = [obs.flatten(1), timestep_embedding(t, self.time_dim)]
        if self.mode_embed is not None:
            if mode is None:
                raise ValueError("this model takes a mode input (primitive id); none given")
            parts.append(self.mode_embed(mode))
        if self.intent_width:
            if intent is None or intent.shape[-1] != self.intent_width:
                raise ValueError(f"this model takes an intent condition of {self.intent_width} values")
            parts.append(intent)
        return self.cond(torch.cat(parts, dim=-1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, obs: torch.Tensor, mode: torch.Tensor | None = None,
                intent: torch.Tensor | None = None):  # fmt: skip
        cond = self.condition(t, obs, mode, intent)
        return self.denoise(x, [block.film(cond) for block in self.blocks])

    def films(self, timesteps: torch.Tensor, obs: torch.Tensor, mode: torch.Tensor | None,
              intent: torch.Tensor | None = None) -> list[torch.Tensor]:  # fmt: skip
        """FiLM parameters of every block for every timestep at once: a list (one per block) of (K, B, 2 * hidden)
        for K timesteps and observations (B, H, D). The conditioning does not depend on the noisy sample, so a
        sampler computes it in one batched pass instead of once per denoising step."""
        k, b = len(timesteps), obs.shape[0]
        cond = self.condition(
            timesteps.repeat_interleave(b),
            obs.repeat(k, 1, 1),
            None if mode is None else mode.repeat(k),
            None if intent is None else intent.repeat(k, 1),
        )
        return [block.film(cond).view(k, b, -1) for block in self.blocks]

    def denoise(self, x: torch.Tensor, films: list[torch.Tensor]) -> torch.Tensor:
        """The prediction for x (B, T, 4, 3) given each block's FiLM parameters (B, 2 * hidden)."""
        h = self.inp(x.flatten(1))
        for block, film in zip(self.blocks, films):
            h = block.apply_film(h, film)
        return self.out(self.out_norm(h)).view(x.shape)


class InverseDynamics(nn.Module):
    """Next joint targets from the observation history and the leading steps of Δx.

    ``forward(obs, dx)``: obs (B, H, D) normalized, dx (B, idm_horizon, 4, 3) normalized; returns (B, 16): the
    normalized change of joint targets (next targets minus the targets in force, see ``DexGenModel.idm_targets``).
    """

    def __init__(self, cfg: ModelConfig, *, num_joints: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        width = cfg.history * cfg.obs_dim + cfg.idm_horizon * 12
        for _ in range(cfg.idm_layers):
            layers += [nn.Linear(width, cfg.idm_hidden), nn.LayerNorm(cfg.idm_hidden), nn.Mish()]
            width = cfg.idm_hidden
        layers.append(nn.Linear(width, num_joints))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((obs.flatten(1), dx.flatten(1)), dim=-1))


class RotationPredictor(nn.Module):
    """The object's mean angular velocity over the horizon from the observation history and the whole of Δx.

    ``forward(obs, dx)``: obs (B, H, D) normalized, dx (B, T, 4, 3) normalized; returns (B, 3) normalized angular
    velocity (see ``DexGenModel.predict_rotation``). Smooth activations, so that its gradient guides sampling.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        width = cfg.history * cfg.obs_dim + cfg.horizon * 12
        self.net = nn.Sequential(
            nn.Linear(width, cfg.rotation_hidden), nn.LayerNorm(cfg.rotation_hidden), nn.Mish(),
            nn.Linear(cfg.rotation_hidden, cfg.rotation_hidden), nn.LayerNorm(cfg.rotation_hidden), nn.Mish(),
            nn.Linear(cfg.rotation_hidden, 3),
        )  # fmt: skip

    def forward(self, obs: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((obs.flatten(1), dx.flatten(1)), dim=-1))

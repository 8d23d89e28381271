"""Guidance terms: pulls on the diffusion model's clean-sample estimate at every denoising step.

The motion-command term implements ``Δx <- Δx - α σ_k² ∇ Dist(Δx, Δx_cmd)`` with
``Dist = Σ_i ||Δx_i - Δx_cmd,i||²`` measured in the model's normalized units (each coordinate of Δx divided by its
standard deviation in the training data), so that α is unitless and comparable across horizon steps; σ_k² is the
noise variance of the sample at step k (``DexGenModel.sample``). The step moves the estimate a fraction 2 α σ_k² of
the way to the command, capped at 1 (landing on it): a larger step would overshoot Dist's minimum.
"""

from __future__ import annotations

import torch

from dexgen.model.dexgen_model import DexGenModel, Guide


def command_guide(model: DexGenModel, command: torch.Tensor, alpha: float) -> Guide:
    """The motion-command guidance for a command Δx_cmd (B, T, 4, 3), metres, palm frame, with strength α >= 0."""
    if alpha < 0:
        raise ValueError(f"guidance strength alpha must be >= 0, got {alpha}")
    target = model.dx_norm.normalize(command)

    def guide(x0: torch.Tensor, sigma2: float) -> torch.Tensor:
        # Dist is quadratic, so a step of alpha * sigma2 * grad = 2 alpha sigma2 (x0 - target) moves x0 a fraction
        # 2 alpha sigma2 of the way to the command; past 1 it would overshoot the minimum, so the step stops there.
        step = min(2.0 * alpha * sigma2, 1.0)
        return x0 - step * (x0 - target)

    return guide


def command_distance(model: DexGenModel, dx: torch.Tensor, command: torch.Tensor) -> torch.Tensor:
    """Dist(Δx, Δx_cmd) per sample (B,), normalized units (see the module docstring)."""
    d = model.dx_norm.normalize(dx) - model.dx_norm.normalize(command)
    return d.pow(2).sum(dim=(1, 2, 3))

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


def workspace_guide(model: DexGenModel, tips: torch.Tensor, *, centre: torch.Tensor, radius: float,
                    weight: float) -> Guide:  # fmt: skip
    """Keep the fingertips within ``radius`` metres of ``centre`` (3,) (palm frame): a penalty
    ``Σ max(0, ||x_t + Δx_i - c|| - R)²`` on fingertips that leave the ball, stepped like the command term (a fraction
    ``min(2 weight σ_k², 1)`` of the way back to the ball's surface), in metres. ``tips`` (B, 4, 3) are the current
    fingertip positions."""
    if radius <= 0 or weight < 0:
        raise ValueError(f"workspace radius must be > 0 and weight >= 0, got {radius} and {weight}")
    rel_now = (tips - centre)[:, None]  # (B, 1, 4, 3)

    def guide(x0: torch.Tensor, sigma2: float) -> torch.Tensor:
        rel = rel_now + model.dx_norm.unnormalize(x0)
        dist = rel.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        outside = (dist - radius).clamp_min(0.0)
        step = min(2.0 * weight * sigma2, 1.0)
        dx = model.dx_norm.unnormalize(x0) - step * outside * rel / dist
        return model.dx_norm.normalize(dx)

    return guide


def _limit_penalty(q: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Σ_j max(0, q_j - hi_j)² + max(0, lo_j - q_j)² per row of joint targets q (B, 16) rad: (B,) rad²."""
    return ((q - hi).clamp_min(0.0).pow(2) + (lo - q).clamp_min(0.0).pow(2)).sum(dim=1)


def joint_limit_guide(model: DexGenModel, obs: torch.Tensor, *, lower: torch.Tensor, upper: torch.Tensor,
                      margin: float, weight: float) -> Guide:  # fmt: skip
    """Keep the joint targets the inverse dynamics model would give for the sample inside the joint limits shrunk by
    ``margin`` radians: the penalty ``P = Σ_j max(0, q_j - (upper_j - margin))² + max(0, (lower_j + margin) - q_j)²``
    on ``q = IDM(obs, Δx)``, ``obs`` (B, H, D) the observation history, ``lower``/``upper`` (16,) rad. Each step is
    a fraction ``min(2 weight σ_k², 1)`` of the Gauss-Newton step that removes the linearized violation
    (``-2 P ∇P / ||∇P||²``, through the IDM), so ``weight`` is unitless like α. Costs one IDM forward pass per
    denoising step, and a backward pass when some target is outside (the sampler runs without autograd, so this
    guide re-enables it)."""
    if margin < 0 or weight < 0:
        raise ValueError(f"joint-limit margin and weight must be >= 0, got {margin} and {weight}")
    with torch.inference_mode(False):
        obs = obs.clone()  # a normal tensor: inference-mode tensors cannot take part in autograd
        lo, hi = (lower + margin).clone(), (upper - margin).clone()

    def guide(x0: torch.Tensor, sigma2: float) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            x = x0.clone().requires_grad_(True)
            penalty = _limit_penalty(model.idm_targets(obs, model.dx_norm.unnormalize(x)), lo, hi)
            if not bool((penalty > 0).any()):
                return x0
            (grad,) = torch.autograd.grad(penalty.sum(), x)
        norm2 = grad.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-12)
        step = min(2.0 * weight * sigma2, 1.0) * (2.0 * penalty / norm2).detach()
        return x0 - step[:, None, None, None] * grad.detach()

    return guide


def joint_limit_violation(model: DexGenModel, obs: torch.Tensor, dx: torch.Tensor, *, lower: torch.Tensor,
                          upper: torch.Tensor, margin: float = 0.0) -> torch.Tensor:  # fmt: skip
    """The joint-limit penalty P (B,), rad², of the IDM's targets for fingertip motion ``dx`` (B, T, 4, 3) metres
    (see ``joint_limit_guide``)."""
    return _limit_penalty(model.idm_targets(obs, dx), lower + margin, upper - margin)


def compose(*guides: Guide | None) -> Guide | None:
    """The guides applied one after the other at every step (None entries skipped; None if none is left)."""
    active = [g for g in guides if g is not None]
    if not active:
        return None

    def guide(x0: torch.Tensor, sigma2: float) -> torch.Tensor:
        for g in active:
            x0 = g(x0, sigma2)
        return x0

    return guide


def forward_diffused(model: DexGenModel, command: torch.Tensor, k0: int, *, num_inference_steps: int | None = None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:  # fmt: skip
    """The partial-noise variant's start: the command (B, T, 4, 3), metres, normalized and diffused forward to the
    k0-th timestep of the sampler (0: the noisiest, i.e. almost pure noise), for ``DexGenModel.sample(start=...)``."""
    sched = model.sampler(num_inference_steps)
    if not 0 <= k0 < len(sched.timesteps):
        raise ValueError(f"partial-noise step must be in [0, {len(sched.timesteps) - 1}], got {k0}")
    x = model.dx_norm.normalize(command)
    noise = torch.randn(x.shape, generator=generator)
    t = sched.timesteps[k0 : k0 + 1].expand(x.shape[0])
    return model.train_scheduler.add_noise(x, noise, t), k0

"""Guidance terms: pulls on the diffusion model's clean-sample estimate at every denoising step.

The motion-command term implements ``Δx <- Δx - α σ_k² ∇ Dist(Δx, Δx_cmd)`` with
``Dist = Σ_i ||Δx_i - Δx_cmd,i||²`` measured in the model's normalized units (each coordinate of Δx divided by its
standard deviation in the training data), so that α is unitless and comparable across horizon steps; σ_k² is the
noise variance of the sample at step k (``DexGenModel.sample``). The step moves the estimate a fraction 2 α σ_k² of
the way to the command, capped at 1 (landing on it): a larger step would overshoot Dist's minimum.

A variant matches only the rigid part of the command: ``Dist_rigid = Σ_i ||P (Δx_i - Δx_cmd,i)||²`` in metres,
with P the orthogonal projection of the four fingertip displacements (12) onto the displacements a rigid motion of
the fingertips makes (small rotation about, and translation of, their centroid: 6 dimensions). What the command says
about the object (turn this way, move that way) is kept; how the fingers do it (grip, gaiting, a lifted finger) is
left to the prior, which a naive rigid command would otherwise pull toward an unsafe motion.

The rotation term (an extra guidance term) matches what the command means for the object rather than for the
fingertips: the command's intent is the rotation its fingertips make as a rigid body over the horizon (θ_cmd, a
least-squares fit; ω_cmd = θ_cmd / horizon time), and the penalty is ``||ω̂(o, Δx) - ω_cmd||²`` with ω̂ the model's
learned prediction of the object's angular velocity were the fingertips to move by Δx. The experts turn objects by
finger gaiting, whose fingertips barely turn as a rigid body (in the palm-down data the correlation between the
two is -0.09), so a per-fingertip pull toward a rigid turn asks the prior for motion it never makes; the rotation
term lets the prior pick the gaiting that turns the object as asked.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dexgen.data.schema import CONTROL_HZ
from dexgen.model.dexgen_model import DexGenModel, Guide

INTENTS = ("auto", "rigid", "predicted")
"""How best-of-candidates reads a command's intended object rotation (see ``command_intent``)."""
RANKINGS = ("closest", "onward")
"""How best-of-candidates scores a plan's predicted rotation against the intended one (see ``intent_miss``)."""
COMPONENTS = ("full", "rigid")
"""What the command guidance matches: every fingertip displacement, or only their rigid motion."""


def _step_fraction(weight: float, sigma2: float) -> float:
    """How far every guide moves the estimate toward what it asks for at a step of noise variance σ_k²: the
    gradient step of ``weight * Dist`` for a quadratic Dist, ``2 weight σ_k²`` of the way, capped at 1 (landing on
    the minimum; a larger step would overshoot it)."""
    return min(2.0 * weight * sigma2, 1.0)


def _sample_step_fraction(weight: torch.Tensor, sigma2: float, ndim: int) -> torch.Tensor:
    """``_step_fraction`` of per-sample weights (B,), shaped (B, 1, ...) to broadcast over a sample of ``ndim``."""
    return (2.0 * sigma2 * weight).clamp(max=1.0).reshape(-1, *([1] * (ndim - 1)))


def _check_alpha(alpha: float | torch.Tensor, batch: int) -> float | torch.Tensor:
    """α as given: a float >= 0, or per-sample strengths (B,) >= 0 (returned as a float tensor)."""
    if isinstance(alpha, torch.Tensor):
        if alpha.shape != (batch,):
            raise ValueError(f"per-sample guidance strengths must have shape ({batch},), got {tuple(alpha.shape)}")
        if not bool(torch.isfinite(alpha).all()) or bool((alpha < 0).any()):
            raise ValueError("guidance strengths alpha must be finite and >= 0")
        return alpha.float()
    if alpha < 0:
        raise ValueError(f"guidance strength alpha must be >= 0, got {alpha}")
    return float(alpha)


def _rigid_basis(tips: torch.Tensor) -> torch.Tensor:
    """(B, 12, 6): fingertip displacements (flattened (4, 3)) of a small rotation θ about the fingertips' centroid
    (first 3 columns) and a translation v (last 3) of fingertips at ``tips`` (B, 4, 3): ``d_i = θ × r_i + v``."""
    r = tips - tips.mean(dim=1, keepdim=True)  # (B, 4, 3)
    zero = torch.zeros_like(r[..., 0])
    x, y, z = r.unbind(-1)
    # θ × r = -[r]x θ, so the rotation block of each fingertip is -[r]x
    skew = torch.stack(
        [torch.stack([zero, z, -y], -1), torch.stack([-z, zero, x], -1), torch.stack([y, -x, zero], -1)], -2
    )  # (B, 4, 3, 3)
    eye = torch.eye(3, dtype=tips.dtype).expand_as(skew)
    return torch.cat([skew, eye], dim=-1).reshape(tips.shape[0], 12, 6)


def rigid_rotation(dx: torch.Tensor, tips: torch.Tensor) -> torch.Tensor:
    """The rotation vector θ (B, 3), radians, palm frame, of the rigid motion that best fits (least squares, the
    Kabsch solution) fingertip displacements ``dx`` (B, 4, 3) m of fingertips at ``tips`` (B, 4, 3) m."""
    before = tips - tips.mean(dim=1, keepdim=True)
    after = tips + dx
    after = after - after.mean(dim=1, keepdim=True)
    u, _, vt = torch.linalg.svd(before.transpose(1, 2) @ after)
    flip = torch.sign(torch.linalg.det(vt.transpose(1, 2) @ u.transpose(1, 2)))
    d = torch.diag_embed(torch.stack([torch.ones_like(flip), torch.ones_like(flip), flip], dim=-1))
    rot = vt.transpose(1, 2) @ d @ u.transpose(1, 2)
    # the logarithm of the rotation: angle / (2 sin angle) times the skew part (1/2 as the angle goes to 0)
    vee = torch.stack([rot[:, 2, 1] - rot[:, 1, 2], rot[:, 0, 2] - rot[:, 2, 0], rot[:, 1, 0] - rot[:, 0, 1]], -1)
    angle = torch.arccos(((rot.diagonal(dim1=1, dim2=2).sum(-1) - 1.0) / 2.0).clamp(-1.0, 1.0))
    scale = torch.where(angle > 1e-4, angle / (2.0 * torch.sin(angle).clamp_min(1e-8)), torch.full_like(angle, 0.5))
    return scale[:, None] * vee


def rigid_projector(tips: torch.Tensor) -> torch.Tensor:
    """(B, 12, 12): the orthogonal projection of four fingertip displacements (flattened (4, 3), metres) onto those
    of a small rigid motion of fingertips at ``tips`` (B, 4, 3), metres: ``d_i = θ × r_i + v`` with ``r_i`` the
    fingertip relative to the fingertips' centroid, for any rotation vector θ and translation v."""
    basis = _rigid_basis(tips)
    return basis @ torch.linalg.pinv(basis)


def command_guide(model: DexGenModel, command: torch.Tensor, alpha: float | torch.Tensor, *,
                  component: str = "full", tips: torch.Tensor | None = None) -> Guide:  # fmt: skip
    """The motion-command guidance for a command Δx_cmd (B, T, 4, 3), metres, palm frame, with strength α >= 0
    (a float, or one per sample (B,)). ``component="rigid"`` matches only the rigid motion of the fingertips, which
    needs the current fingertip positions ``tips`` (B, 4, 3), metres, palm frame (see the module docstring)."""
    alpha = _check_alpha(alpha, command.shape[0])
    if component not in COMPONENTS:
        raise ValueError(f"command component must be one of {', '.join(COMPONENTS)}, got {component!r}")
    if component == "rigid":
        if tips is None:
            raise ValueError("rigid command guidance needs the current fingertip positions")
        proj = rigid_projector(tips)

        def rigid(x0: torch.Tensor, sigma2: float) -> torch.Tensor:
            # Dist_rigid = sum ||P (dx - cmd)||^2 with P a symmetric projection: its gradient 2 P (dx - cmd) moves
            # the rigid part of dx a fraction 2 alpha sigma2 of the way to the command's (see _step_fraction).
            dx = model.dx_norm.unnormalize(x0)
            step = _step(alpha, sigma2, dx.ndim)
            diff = (dx - command).flatten(2)  # (B, T, 12)
            dx = dx - step * (diff @ proj.transpose(1, 2)).reshape(dx.shape)
            return model.dx_norm.normalize(dx)

        return rigid
    return _pull_toward(model.dx_norm.normalize(command), alpha)


def _pull_toward(target: torch.Tensor, weight: float | torch.Tensor, mask: torch.Tensor | None = None) -> Guide:
    """The guide of a quadratic distance to ``target`` (normalized units, the sample's shape): ``weight σ_k² ∇Dist
    = 2 weight σ_k² (x0 - target)`` moves the estimate that fraction of the way (see ``_step_fraction``); ``mask``
    (broadcast to the sample) limits the pull to where it is 1."""

    def guide(x0: torch.Tensor, sigma2: float) -> torch.Tensor:
        pull = x0 - target if mask is None else mask * (x0 - target)
        return x0 - _step(weight, sigma2, x0.ndim) * pull

    return guide


def _step(weight: float | torch.Tensor, sigma2: float, ndim: int) -> float | torch.Tensor:
    """The step fraction of a float weight, or of per-sample weights (B,) shaped to a sample of ``ndim``."""
    if isinstance(weight, torch.Tensor):
        return _sample_step_fraction(weight, sigma2, ndim)
    return _step_fraction(weight, sigma2)


def plan_guide(model: DexGenModel, remainder: torch.Tensor, weight: float, *,
               active: torch.Tensor | None = None) -> Guide:  # fmt: skip
    """Keep on with the plan being followed: pull the first T' steps of the sample toward ``remainder``
    (B, T', 4, 3), T' < T, the rest of that plan relative to the fingertips now (metres, palm frame), as the command
    term pulls toward the command. Replanning every step otherwise lets successive plans start different gaits (a
    finger lifting in one, pushing in the next), so that no gait is carried through; the later steps are left free
    to extend the plan. ``active`` (B,) bool: the samples that have a plan to keep on with (None: all)."""
    if weight < 0:
        raise ValueError(f"plan consistency weight must be >= 0, got {weight}")
    n = remainder.shape[1]
    if not 0 < n < model.cfg.horizon:
        raise ValueError(f"the plan's remainder must be 1 to {model.cfg.horizon - 1} steps long, got {n}")
    target = model.dx_norm.normalize(
        torch.cat([remainder, remainder[:, -1:].expand(-1, model.cfg.horizon - n, -1, -1)], dim=1)
    )
    mask = torch.zeros(remainder.shape[0], model.cfg.horizon, 1, 1)
    mask[:, :n] = 1.0
    if active is not None:
        mask = mask * active.to(mask.dtype)[:, None, None, None]
    return _pull_toward(target, weight, mask)


def command_distance(model: DexGenModel, dx: torch.Tensor, command: torch.Tensor) -> torch.Tensor:
    """Dist(Δx, Δx_cmd) per sample (B,), normalized units (see the module docstring)."""
    d = model.dx_norm.normalize(dx) - model.dx_norm.normalize(command)
    return d.pow(2).sum(dim=(1, 2, 3))


def rigid_command_distance(dx: torch.Tensor, command: torch.Tensor, tips: torch.Tensor) -> torch.Tensor:
    """Dist_rigid(Δx, Δx_cmd) per sample (B,), m², for fingertips at ``tips`` (B, 4, 3) (see the module
    docstring)."""
    diff = (dx - command).flatten(2)
    return (diff @ rigid_projector(tips).transpose(1, 2)).pow(2).sum(dim=(1, 2))


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
        step = _step_fraction(weight, sigma2)
        dx = model.dx_norm.unnormalize(x0) - step * outside * rel / dist
        return model.dx_norm.normalize(dx)

    return guide


def command_rotation(command: torch.Tensor, tips: torch.Tensor) -> torch.Tensor:
    """The command's intended object angular velocity ω_cmd (B, 3), rad/s, palm frame: the rigid rotation of its
    fingertips over the whole horizon (``command`` (B, T, 4, 3) m, fingertips now ``tips`` (B, 4, 3) m) divided by
    the horizon's duration."""
    return rigid_rotation(command[:, -1], tips) * CONTROL_HZ / command.shape[1]


def rigid_fraction_of(command: torch.Tensor, tips: torch.Tensor) -> torch.Tensor:
    """The fraction (B,) in [0, 1] of a command's squared fingertip displacement, summed over the horizon, that
    rigid motions of the fingertips explain (``command`` (B, T, 4, 3) m, fingertips now ``tips`` (B, 4, 3) m): 1 for
    a rigid turn (to first order); a median 0.5 (0.23-0.79, 5-95 %) for the palm-down experts' finger gaiting."""
    rigid = rigid_command_distance(command, torch.zeros_like(command), tips)
    return rigid / command.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-12)


def command_intent(model: DexGenModel, obs: torch.Tensor, command: torch.Tensor, tips: torch.Tensor, *,
                   intent: str = "auto", rigid_fraction: float = 0.9,
                   rigid: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """The object angular velocity (B, 3), rad/s, palm frame, that a command (B, T, 4, 3) m means, given the
    observation history ``obs`` (B, H, D) and the fingertips now ``tips`` (B, 4, 3) m.

    - ``rigid``: ``command_rotation`` (the rigid turn of its fingertips), the reading of a naive rigid command;
    - ``predicted``: the model's rotation predictor applied to the command, the reading of a command that moves
      the fingers as the experts do (finger gaiting), whose rigid turn says nothing about the object's: on the
      palm-down model's validation windows the rigid turn's correlation with the object's z rotation is -0.02,
      the predictor's 0.74 (``dexgen eval-model --parts intent``);
    - ``auto``: rigid where the command's ``rigid_fraction_of`` (see that function) is at least
      ``rigid_fraction``, predicted elsewhere; ``rigid`` (B,) bool, if given, is that reading already made."""
    if intent not in INTENTS:
        raise ValueError(f"intent must be one of {', '.join(INTENTS)}, got {intent!r}")
    if intent == "rigid":
        return command_rotation(command, tips)
    predicted = model.predict_rotation(obs, command)
    if intent == "predicted":
        return predicted
    if rigid is None:
        rigid = rigid_fraction_of(command, tips) >= rigid_fraction
    return torch.where(rigid[:, None], command_rotation(command, tips), predicted)


def intent_miss(predicted: torch.Tensor, want: torch.Tensor, *, ranking: str = "closest") -> torch.Tensor:
    """How far each plan's predicted object angular velocity ``predicted`` (N, 3) rad/s misses the intended one
    ``want`` (N, 3) rad/s: (N,) rad²/s², the lower the better.

    - ``closest``: the squared distance ``||predicted - want||²``;
    - ``onward``: the same, except that turning further than asked along the intended axis costs nothing. Only the
      shortfall along ``want`` and the error across it count. The rotation predictor is a regression, so the
      reading of a command through it (``command_intent``) is shrunk toward zero. ``closest`` then prefers plans
      that turn less than the operator meant. Where ``want`` is (near) zero this equals ``closest``."""
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, got {ranking!r}")
    miss = predicted - want
    if ranking == "closest":
        return miss.pow(2).sum(dim=1)
    norm = want.norm(dim=1, keepdim=True)
    axis = torch.where(norm > 1e-6, want / norm.clamp_min(1e-6), torch.zeros_like(want))
    along = (miss * axis).sum(dim=1, keepdim=True)
    across = miss - along * axis
    return across.pow(2).sum(dim=1) + along.clamp_max(0.0).pow(2).squeeze(1)


def plan_stray(plans: torch.Tensor, command: torch.Tensor) -> torch.Tensor:
    """How far plans (N, T, 4, 3) m stray from the command (N, T, 4, 3) m, both relative to the fingertips now:
    (N,) metres, the mean over horizon steps and fingertips of the distance (what ``dexgen.eval.metrics.follow_error``
    measures of the executed motion)."""
    return (plans - command).norm(dim=-1).mean(dim=(1, 2))


def blended_miss(rotation_miss: torch.Tensor, stray: torch.Tensor, *, k: int, weight: float) -> torch.Tensor:
    """Best-of-candidates' score (N k,), the lower the better, of N hands' k candidates each (side by side):
    ``rotation_miss`` (``intent_miss``) plus ``weight`` times ``stray`` (``plan_stray``), each divided by its mean
    over the hand's k candidates, so that the weight has no unit (1: a plan 10 % further from the command than the
    hand's average costs as much as one 10 % further from the intended rotation)."""

    def relative(x: torch.Tensor) -> torch.Tensor:
        per_hand = x.view(-1, k)
        return (per_hand / per_hand.mean(dim=1, keepdim=True).clamp_min(1e-12)).reshape(-1)

    return relative(rotation_miss) + weight * relative(stray)


def _gauss_newton_guide(penalty_of: Callable[[torch.Tensor], torch.Tensor], weight: float) -> Guide:
    """A guide that steps a fraction ``min(2 weight σ_k², 1)`` of the Gauss-Newton step removing the linearized
    penalty, ``-2 P ∇P / ||∇P||²``, where ``penalty_of`` maps the normalized estimate x0 (B, T, 4, 3) to P (B,) >= 0
    (autograd is re-enabled for it: the sampler runs in inference mode). No backward pass when P is zero."""

    def guide(x0: torch.Tensor, sigma2: float) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            x = x0.clone().requires_grad_(True)
            penalty = penalty_of(x)
            if not bool((penalty > 0).any()):
                return x0
            (grad,) = torch.autograd.grad(penalty.sum(), x)
        norm2 = grad.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-12)
        step = _step_fraction(weight, sigma2) * (2.0 * penalty / norm2).detach()
        return x0 - step[:, None, None, None] * grad.detach()

    return guide


def rotation_guide(model: DexGenModel, obs: torch.Tensor, command: torch.Tensor, tips: torch.Tensor, *,
                   weight: float) -> Guide:  # fmt: skip
    """Turn the object as the command intends: the penalty ``P = ||ω̂(obs, Δx) - ω_cmd||²`` (rad/s)² with ω̂ the
    model's rotation predictor and ω_cmd = ``command_rotation(command, tips)`` (see the module docstring);
    ``obs`` (B, H, D) the observation history. Each step is a fraction ``min(2 weight σ_k², 1)`` of the
    Gauss-Newton step that removes the linearized penalty (``-2 P ∇P / ||∇P||²``), so ``weight`` is unitless like
    α. Costs a forward and a backward pass of the (small) predictor per denoising step."""
    if weight < 0:
        raise ValueError(f"rotation guidance weight must be >= 0, got {weight}")
    if model.rotation is None:
        raise ValueError("this model has no rotation predictor: retrain it with this code (rotation_hidden > 0)")
    with torch.inference_mode(False):
        obs = obs.clone()  # normal tensors: inference-mode tensors cannot take part in autograd
        want = command_rotation(command, tips).clone()
    return _gauss_newton_guide(
        lambda x: (model.predict_rotation(obs, model.dx_norm.unnormalize(x)) - want).pow(2).sum(dim=1), weight
    )


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
    return _gauss_newton_guide(
        lambda x: _limit_penalty(model.idm_targets(obs, model.dx_norm.unnormalize(x)), lo, hi), weight
    )


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

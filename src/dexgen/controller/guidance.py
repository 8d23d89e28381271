"""Guidance terms: pulls on the diffusion model's clean-sample estimate at every denoising step.

The motion-command term implements ``Δx <- Δx - α σ_k² ∇ Dist(Δx, Δx_cmd)`` with
``Dist = Σ_i ||Δx_i - Δx_cmd,i||²`` measured in the model's normalized units (each coordinate of Δx divided by its
standard deviation in the training data), so that α is unitless and comparable across horizon steps; σ_k² is the
noise variance of the sample at step k (``DexGenModel.sample``). The step moves the estimate a fraction 2 α σ_k² of
the way to the command, capped at 1 (landing on it): a larger step would overshoot Dist's minimum.

The controller also reads what a command means for the object: its intended rotation (``command_intent``), which
ranks best-of-candidates plans and picks the denoiser's mode, and, for a model with an intent input, its intended
twist (``rigid_twist``: a least-squares rigid fit over the whole horizon of the command's fingertips in their own
layout). The experts turn objects by finger gaiting, whose
fingertips barely turn as a rigid body (in the palm-down data the correlation between the two is -0.09), so a
command shaped like their motion is read through the model's rotation predictor, and a rigid turn of the fingertips
(a keyboard's, a kinematic intent's) as that turn.
"""

from __future__ import annotations

import torch

from dexgen.controller.config import INTENTS
from dexgen.data.schema import CONTROL_HZ
from dexgen.model.dexgen_model import DexGenModel, Guide


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


def command_guide(model: DexGenModel, command: torch.Tensor, alpha: float | torch.Tensor) -> Guide:
    """The motion-command guidance for a command Δx_cmd (B, T, 4, 3), metres, palm frame, with strength α >= 0
    (a float, or one per sample (B,)); see the module docstring."""
    alpha = _check_alpha(alpha, command.shape[0])
    return _pull_toward(model.dx_norm.normalize(command), alpha)


def _pull_toward(target: torch.Tensor, weight: float | torch.Tensor) -> Guide:
    """The guide of a quadratic distance to ``target`` (normalized units, the sample's shape): ``weight σ_k² ∇Dist
    = 2 weight σ_k² (x0 - target)`` moves the estimate that fraction of the way (see ``_step_fraction``)."""

    def guide(x0: torch.Tensor, sigma2: float) -> torch.Tensor:
        return x0 - _step(weight, sigma2, x0.ndim) * (x0 - target)

    return guide


def _step(weight: float | torch.Tensor, sigma2: float, ndim: int) -> float | torch.Tensor:
    """The step fraction of a float weight, or of per-sample weights (B,) shaped to a sample of ``ndim``."""
    if isinstance(weight, torch.Tensor):
        return _sample_step_fraction(weight, sigma2, ndim)
    return _step_fraction(weight, sigma2)


def command_distance(model: DexGenModel, dx: torch.Tensor, command: torch.Tensor) -> torch.Tensor:
    """Dist(Δx, Δx_cmd) per sample (B,), normalized units (see the module docstring)."""
    d = model.dx_norm.normalize(dx) - model.dx_norm.normalize(command)
    return d.pow(2).sum(dim=(1, 2, 3))


def command_rotation(command: torch.Tensor, tips: torch.Tensor) -> torch.Tensor:
    """The command's intended object angular velocity ω_cmd (B, 3), rad/s, palm frame: the rigid rotation of its
    fingertips over the whole horizon (``command`` (B, T, 4, 3) m, fingertips now ``tips`` (B, 4, 3) m) divided by
    the horizon's duration."""
    return rigid_rotation(command[:, -1], tips) * CONTROL_HZ / command.shape[1]


def rigid_twist(command: torch.Tensor, tips: torch.Tensor, *, dt: float = 1.0 / CONTROL_HZ) -> torch.Tensor:
    """The object twist (B, 6) that a command's fingertip displacement field means: angular velocity ω (3, rad/s)
    then translation velocity v (3, m/s), palm frame, constant over the horizon, fitted about the centroid of the
    command's own fingertips.

    ``command`` (B, T, 4, 3) m: fingertip displacements at steps 1..T (``dt`` s apart) relative to ``tips`` (B, 4, 3)
    m, the fingertips the command starts from, in the command's own layout (a person's hand need not be the
    robot's). Each step's rigid rotation θ_i is ``rigid_rotation`` (Kabsch) and its translation c_i the mean
    displacement of the fingertips; ω and v are the least-squares slopes through the origin over all steps,
    ``ω = Σ t_i θ_i / Σ t_i²`` with ``t_i = i dt`` (likewise v from c_i), so tremor and wavering speed average out
    over the horizon rather than riding on its last step."""
    b, t = command.shape[:2]
    theta = rigid_rotation(command.flatten(0, 1), tips.repeat_interleave(t, dim=0)).view(b, t, 3)
    shift = command.mean(dim=2)  # (B, T, 3) m: the centroid's displacement
    times = dt * torch.arange(1, t + 1, dtype=command.dtype)
    weights = times / times.pow(2).sum()  # least squares of x_i = rate * t_i
    return torch.cat([torch.einsum("t,btc->bc", weights, theta), torch.einsum("t,btc->bc", weights, shift)], dim=-1)


def rigid_fraction_of(command: torch.Tensor, tips: torch.Tensor) -> torch.Tensor:
    """The fraction (B,) in [0, 1] of a command's squared fingertip displacement, summed over the horizon, that
    rigid motions of the fingertips explain (``command`` (B, T, 4, 3) m, fingertips now ``tips`` (B, 4, 3) m): 1 for
    a rigid turn (to first order); a median 0.5 (0.23-0.79, 5-95 %) for the palm-down experts' finger gaiting."""
    rigid = (command.flatten(2) @ rigid_projector(tips).transpose(1, 2)).pow(2).sum(dim=(1, 2))
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


def intent_miss(predicted: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """How far each plan's predicted object angular velocity ``predicted`` (N, 3) rad/s misses the intended one
    ``want`` (N, 3) rad/s: the squared distance (N,), rad²/s², the lower the better."""
    return (predicted - want).pow(2).sum(dim=1)

"""``DexGenModel``: the normalizers, the denoiser, the inverse dynamics model and the diffusion schedule together.

Units: ``obs`` (B, H, 44) is the observation history (joint positions rad, joint targets rad, fingertips m, palm
frame; oldest first), ``dx`` (B, T, 4, 3) is future fingertip motion relative to now, metres, palm frame, and
joint targets are (B, 16) radians. Methods taking ``_n`` tensors expect normalized units.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from dexgen.model.config import ModelConfig
from dexgen.model.networks import Denoiser, InverseDynamics, RotationPredictor
from dexgen.model.normalizer import Normalizer

Guide = Callable[[torch.Tensor, float], torch.Tensor]
"""A guidance step: (clean-sample estimate x0 (B, T, 4, 3) normalized, noise variance σ_k² of the current step)
-> the guided estimate, same shape. Called once per denoising step (see ``DexGenModel.sample``)."""

NUM_JOINTS = 16
TARGETS = slice(16, 32)
"""Where the joint targets in force sit in an observation frame."""


class DexGenModel(nn.Module):
    """Diffusion prior p(Δx | o) and inverse dynamics a = f(o, Δx), with their normalizers."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.obs_norm = Normalizer((cfg.obs_dim,))
        self.dx_norm = Normalizer((cfg.horizon, 4, 3))
        self.delta_norm = Normalizer((NUM_JOINTS,))
        self.denoiser = Denoiser(cfg)
        self.idm = InverseDynamics(cfg, num_joints=NUM_JOINTS)
        self.rotation: RotationPredictor | None = None
        """The object-rotation predictor (None when ``cfg.rotation_hidden`` is 0)."""
        if cfg.rotation_hidden > 0:
            self.rotation = RotationPredictor(cfg)
            self.angvel_norm = Normalizer((3,))
        sched = {"num_train_timesteps": cfg.num_train_timesteps, "beta_schedule": cfg.beta_schedule,
                 "prediction_type": cfg.prediction_type, "clip_sample": False}  # fmt: skip
        self.train_scheduler = DDPMScheduler(**sched)
        self._sched_kwargs = sched
        self._samplers: dict[int, DDIMScheduler] = {}

    # ---- inputs -------------------------------------------------------------------------------------------------
    def check_obs(self, obs: torch.Tensor) -> None:
        """A ValueError naming the problem if ``obs`` is not a finite (B, H, D) observation history."""
        want = (self.cfg.history, self.cfg.obs_dim)
        if obs.ndim != 3 or tuple(obs.shape[1:]) != want:
            raise ValueError(f"observation history must have shape (B, {want[0]}, {want[1]}), got {tuple(obs.shape)}")
        if not torch.isfinite(obs).all():
            raise ValueError("observation history holds NaN or inf")

    def _mode(self, mode: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """The mode ids (batch,) the denoiser sees: ``mode`` (a scalar or (batch,) primitive ids) broadcast; for a
        model trained with mode dropout, None or a negative id means the unknown mode."""
        if self.cfg.mode == "none":
            return None
        unknown = self.cfg.unknown_mode
        if mode is None:
            if unknown is None:
                raise ValueError("this model takes a mode input (primitive id); none given")
            return torch.full((batch,), unknown, dtype=torch.int64)
        m = torch.as_tensor(mode, dtype=torch.int64).expand(batch)
        if bool((m >= self.cfg.num_modes).any()):
            raise ValueError(f"mode ids must be below {self.cfg.num_modes}, got {int(m.max())}")
        if bool((m < 0).any()):
            if unknown is None:
                raise ValueError("this model was trained without an unknown mode (mode_dropout 0); give a primitive id")
            m = torch.where(m < 0, torch.full_like(m, unknown), m)
        return m

    # ---- training losses ----------------------------------------------------------------------------------------
    def diffusion_loss(
        self,
        obs: torch.Tensor,
        dx: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        mode: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """DDPM loss (mean squared error of the prediction, normalized units) on a batch of windows: obs (B, H, D),
        dx (B, T, 4, 3) metres; mask (B, T) bool excludes padded steps past an episode's end."""
        obs_n, x0 = self.obs_norm.normalize(obs), self.dx_norm.normalize(dx)
        b = x0.shape[0]
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, self.cfg.num_train_timesteps, (b,), generator=generator)
        noisy = self.train_scheduler.add_noise(x0, noise, t)
        pred = self.denoiser(noisy, t, obs_n, self._mode(mode, b))
        target = noise if self.cfg.prediction_type == "epsilon" else x0
        err = (pred - target).pow(2).mean(dim=(2, 3))
        if mask is None:
            return err.mean()
        mask = mask.float()
        return (err * mask).sum() / mask.sum().clamp_min(1.0)

    def idm_loss(self, obs: torch.Tensor, dx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean squared error (normalized units) of the predicted change of joint targets: obs (B, H, D),
        dx (B, T, 4, 3) metres, targets (B, 16) rad the next joint targets."""
        delta = targets - obs[:, -1, TARGETS]
        pred = self.idm(self.obs_norm.normalize(obs), self.dx_norm.normalize(dx)[:, : self.cfg.idm_horizon])
        return (pred - self.delta_norm.normalize(delta)).pow(2).mean()

    def rotation_loss(self, obs: torch.Tensor, dx: torch.Tensor, angvel: torch.Tensor, *,
                      generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """Mean squared error (normalized units) of the predicted object angular velocity (B, 3) rad/s for windows
        obs (B, H, D), dx (B, T, 4, 3) metres, with Δx noised (``cfg.rotation_noise``, see ModelConfig)."""
        if self.rotation is None:
            raise ValueError("this model has no rotation predictor (rotation_hidden is 0)")
        x = self.dx_norm.normalize(dx)
        scale = torch.rand((x.shape[0], 1, 1, 1), generator=generator) * self.cfg.rotation_noise
        x = x + scale * torch.randn(x.shape, generator=generator)
        pred = self.rotation(self.obs_norm.normalize(obs), x)
        return (pred - self.angvel_norm.normalize(angvel)).pow(2).mean()

    # ---- inference ----------------------------------------------------------------------------------------------
    def idm_targets(self, obs: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """Next joint targets (B, 16) rad for observation history (B, H, D) and fingertip motion (B, T, 4, 3) m
        (only the first ``idm_horizon`` steps are used; T may be as short as that)."""
        k = self.cfg.idm_horizon
        if dx.ndim != 4 or dx.shape[1] < k or tuple(dx.shape[2:]) != (4, 3):
            raise ValueError(f"fingertip motion must have shape (B, >={k}, 4, 3), got {tuple(dx.shape)}")
        dx_n = (dx[:, :k] - self.dx_norm.mean[:k]) / self.dx_norm.std[:k]
        pred = self.idm(self.obs_norm.normalize(obs), dx_n)
        return obs[:, -1, TARGETS] + self.delta_norm.unnormalize(pred)

    def predict_rotation(self, obs: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """The object's mean angular velocity (B, 3), rad/s, palm frame, over the horizon, were the fingertips to
        move by ``dx`` (B, T, 4, 3) m after observation history ``obs`` (B, H, D); differentiable in ``dx``."""
        if self.rotation is None:
            raise ValueError("this model has no rotation predictor: retrain it with this code (rotation_hidden > 0)")
        pred = self.rotation(self.obs_norm.normalize(obs), self.dx_norm.normalize(dx))
        return self.angvel_norm.unnormalize(pred)

    def sampler(self, num_inference_steps: int | None = None) -> DDIMScheduler:
        """The DDIM scheduler for ``num_inference_steps`` (default: the config's), cached."""
        n = num_inference_steps or self.cfg.num_inference_steps
        if not 1 <= n <= self.cfg.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be in [1, {self.cfg.num_train_timesteps}], got {n}")
        if n not in self._samplers:
            s = DDIMScheduler(**self._sched_kwargs)
            s.set_timesteps(n)
            self._samplers[n] = s
        return self._samplers[n]

    @torch.inference_mode()
    def sample(
        self,
        obs: torch.Tensor,
        *,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        mode: torch.Tensor | None = None,
        guide: Guide | None = None,
    ) -> torch.Tensor:
        """Sample Δx (B, T, 4, 3) metres, palm frame, given observation histories obs (B, H, D), by DDIM.

        ``noise`` (B, T, 4, 3) is the initial sample (drawn from ``generator`` if None). ``guide``, if given, is
        applied at every denoising step k to the model's clean-sample estimate x0 in normalized units, with
        σ_k² = 1 - ᾱ_k the noise variance of the sample at that step; DDIM then steps from the guided estimate.
        """
        self.check_obs(obs)
        sched = self.sampler(num_inference_steps)
        b = obs.shape[0]
        obs_n = self.obs_norm.normalize(obs)
        m = self._mode(mode, b)
        shape = (b, self.cfg.horizon, 4, 3)
        timesteps = sched.timesteps
        if noise is not None:
            if tuple(noise.shape) != shape:
                raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
            x = noise
        else:
            x = torch.randn(shape, generator=generator)
        abar = sched.alphas_cumprod
        films = self.denoiser.films(timesteps, obs_n, m)
        for k, t in enumerate(timesteps):
            out = self.denoiser.denoise(x, [f[k] for f in films])
            if guide is not None:
                a = abar[t]
                if self.cfg.prediction_type == "epsilon":
                    x0 = (x - (1 - a).sqrt() * out) / a.sqrt()
                    x0 = guide(x0, float(1 - a))
                    out = (x - a.sqrt() * x0) / (1 - a).sqrt()
                else:
                    out = guide(out, float(1 - a))
            x = sched.step(out, t, x).prev_sample
        return self.dx_norm.unnormalize(x)

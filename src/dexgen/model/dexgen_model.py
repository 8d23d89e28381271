"""``DexGenModel``: the normalizers, the denoiser, the inverse dynamics model and the diffusion schedule together.

Units: ``obs`` (B, H, 44) is the observation history (joint positions rad, joint targets rad, fingertips m, palm
frame; oldest first; (B, H, 47) with the gravity direction last for a model with ``gravity_obs``), ``dx`` (B, T,
4, 3) is future fingertip motion relative to now, metres, palm frame, joint targets are (B, 16) radians, and an
intent (B, 6) is a desired object twist, rad/s then m/s, palm frame. Methods taking ``_n`` tensors expect
normalized units.
"""

from __future__ import annotations

import math
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

MIN_EPSILON_START_ABAR = 1e-4
"""Smallest ᾱ at the first sampled timestep of a model that predicts ε: its clean-sample estimate there is
(x - sqrt(1 - ᾱ) ε̂) / sqrt(ᾱ), so an error of ε̂ grows by 1 / sqrt(ᾱ) (about 2,000x at t = 99 of the cosine
schedule, ᾱ 2.4e-7, where "trailing" spacing starts: samples 200 times the data's size)."""

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
        if cfg.intent:
            self.intent_norm = Normalizer((cfg.intent_dim,))
            """Normalizer of the intent (object twist over the horizon) fitted on the training windows."""
        sched = {"num_train_timesteps": cfg.num_train_timesteps, "beta_schedule": cfg.beta_schedule,
                 "prediction_type": cfg.prediction_type, "clip_sample": False}  # fmt: skip
        self.train_scheduler = DDPMScheduler(**sched)
        self._sched_kwargs = {**sched, "timestep_spacing": cfg.timestep_spacing}
        self._samplers: dict[int, DDIMScheduler] = {}
        self.sampler()  # refuses a spacing this prediction type cannot start from, before any training

    @property
    def device(self) -> torch.device:
        """Where the weights live (the CPU unless training moved them)."""
        return self.obs_norm.mean.device

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
            return torch.full((batch,), unknown, dtype=torch.int64, device=self.device)
        m = torch.as_tensor(mode, dtype=torch.int64, device=self.device).expand(batch)
        if bool((m >= self.cfg.num_modes).any()):
            raise ValueError(f"mode ids must be below {self.cfg.num_modes}, got {int(m.max())}")
        if bool((m < 0).any()):
            if unknown is None:
                raise ValueError("this model was trained without an unknown mode (mode_dropout 0); give a primitive id")
            m = torch.where(m < 0, torch.full_like(m, unknown), m)
        return m

    def intent_condition(self, intent: torch.Tensor | None, batch: int, *,
                         keep: torch.Tensor | None = None) -> torch.Tensor | None:  # fmt: skip
        """The intent input (batch, 7) of a model with ``cfg.intent``: the normalized intent times its flag, then
        the flag; ``intent`` (batch, 6) or (6,) rad/s then m/s, palm frame, or None for the null intent (zeros, flag
        0) everywhere; ``keep`` (batch,) bool replaces the intent of the rows where it is False by the null intent
        (intent dropout). None for a model without an intent input (then ``intent`` must be None)."""
        if not self.cfg.intent:
            if intent is not None:
                raise ValueError("this model has no intent input (trained without --model.intent)")
            return None
        if intent is None:
            return torch.zeros(batch, self.cfg.intent_dim + 1, device=self.device)
        it = torch.as_tensor(intent, dtype=torch.float32, device=self.device)
        if it.shape[-1:] != (self.cfg.intent_dim,) or it.ndim > 2:
            raise ValueError(f"intent must have shape ({self.cfg.intent_dim},) or (B, {self.cfg.intent_dim}), "
                             f"got {tuple(it.shape)}")  # fmt: skip
        if not torch.isfinite(it).all():
            raise ValueError("intent holds NaN or inf")
        it = it.expand(batch, -1)
        flag = torch.ones(batch, 1, device=self.device) if keep is None else keep.to(torch.float32).reshape(batch, 1)
        return torch.cat((self.intent_norm.normalize(it) * flag, flag), dim=-1)

    # ---- training losses ----------------------------------------------------------------------------------------
    def diffusion_loss(
        self,
        obs: torch.Tensor,
        dx: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        mode: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        intent: torch.Tensor | None = None,
        intent_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """DDPM loss (mean squared error of the prediction, normalized units) on a batch of windows: obs (B, H, D),
        dx (B, T, 4, 3) metres; mask (B, T) bool excludes padded steps past an episode's end; intent (B, 6) the
        windows' intent labels (rad/s, m/s) for a model with an intent input, with ``intent_keep`` (B,) bool False
        where the null intent replaces it (None: the null intent for every window)."""
        obs_n, x0 = self.obs_norm.normalize(obs), self.dx_norm.normalize(dx)
        b = x0.shape[0]
        # drawn on the CPU (``generator`` is a CPU generator) and moved: the same numbers on every device
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        t = torch.randint(0, self.cfg.num_train_timesteps, (b,), generator=generator).to(x0.device)
        noisy = self.train_scheduler.add_noise(x0, noise, t)
        cond = self.intent_condition(intent, b, keep=intent_keep)
        pred = self.denoiser(noisy, t, obs_n, self._mode(mode, b), cond)
        target = noise if self.cfg.prediction_type == "epsilon" else x0
        err = (pred - target).pow(2).mean(dim=(2, 3))
        if mask is None:
            return err.mean()
        mask = mask.float()
        return (err * mask).sum() / mask.sum().clamp_min(1.0)

    def idm_loss(self, obs: torch.Tensor, dx: torch.Tensor, targets: torch.Tensor, *,
                 mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Mean squared error (normalized units) of the predicted change of joint targets: obs (B, H, D),
        dx (B, T, 4, 3) metres, targets (B, 16) rad the next joint targets. With mask (B, T) bool (False: a
        padded step past the episode's end), only windows whose first ``idm_horizon`` steps are all real count:
        padding is not motion the IDM should learn to act on."""
        delta = targets - obs[:, -1, TARGETS]
        pred = self.idm(self.obs_norm.normalize(obs), self.dx_norm.normalize(dx)[:, : self.cfg.idm_horizon])
        err = (pred - self.delta_norm.normalize(delta)).pow(2).mean(dim=1)
        return _window_mean(err, None if mask is None else mask[:, : self.cfg.idm_horizon])

    def rotation_loss(self, obs: torch.Tensor, dx: torch.Tensor, angvel: torch.Tensor, *,
                      mask: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """Mean squared error (normalized units) of the predicted object angular velocity (B, 3) rad/s for windows
        obs (B, H, D), dx (B, T, 4, 3) metres, with Δx noised (``cfg.rotation_noise``, see ModelConfig). With mask
        (B, T) bool, only windows without padded steps count."""
        if self.rotation is None:
            raise ValueError("this model has no rotation predictor (rotation_hidden is 0)")
        x = self.dx_norm.normalize(dx)
        scale = torch.rand((x.shape[0], 1, 1, 1), generator=generator).to(x.device) * self.cfg.rotation_noise
        x = x + scale * torch.randn(x.shape, generator=generator).to(x.device)
        pred = self.rotation(self.obs_norm.normalize(obs), x)
        return _window_mean((pred - self.angvel_norm.normalize(angvel)).pow(2).mean(dim=1), mask)

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
        """The DDIM scheduler for ``num_inference_steps`` (default: the config's), cached; a ValueError for a model
        predicting ε whose first timestep has almost no signal left (``MIN_EPSILON_START_ABAR``)."""
        n = num_inference_steps or self.cfg.num_inference_steps
        if not 1 <= n <= self.cfg.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be in [1, {self.cfg.num_train_timesteps}], got {n}")
        if n not in self._samplers:
            s = DDIMScheduler(**self._sched_kwargs)  # timestep_spacing from the config
            s.set_timesteps(n)
            start = float(s.alphas_cumprod[s.timesteps[0]])
            if self.cfg.prediction_type == "epsilon" and start < MIN_EPSILON_START_ABAR:
                raise ValueError(f"epsilon prediction cannot sample from timestep {int(s.timesteps[0])} "
                                 f"(ᾱ {start:.2g}: its clean estimate multiplies errors by {start ** -0.5:.0f}); "
                                 "use prediction_type sample or timestep_spacing leading")  # fmt: skip
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
        intent: torch.Tensor | None = None,
        intent_scale: float = 1.0,
    ) -> torch.Tensor:
        """Sample Δx (B, T, 4, 3) metres, palm frame, given observation histories obs (B, H, D), by DDIM.

        ``noise`` (B, T, 4, 3) is the initial sample (drawn from ``generator`` if None). ``guide``, if given, is
        applied at every denoising step k to the model's clean-sample estimate x0 in normalized units, with
        σ_k² = 1 - ᾱ_k the noise variance of the sample at that step; DDIM then steps from the guided estimate.
        ``intent`` (B, 6) or (6,), rad/s then m/s, palm frame: the desired object twist, for a model with an intent
        input; None samples with the null intent (the unconditional prior; ``intent_scale`` is then unused).
        ``intent_scale`` s: classifier-free guidance, each step's prediction is ``u + s (c - u)`` with c given the
        intent and u given the null intent (1: the intent as given; 0: exactly the unconditional sample; above 1
        follows the intent more strongly).
        """
        self.check_obs(obs)
        if not (math.isfinite(intent_scale) and intent_scale >= 0.0):
            raise ValueError(f"intent_scale must be finite and >= 0, got {intent_scale}")
        sched = self.sampler(num_inference_steps)
        b = obs.shape[0]
        obs_n = self.obs_norm.normalize(obs)
        m = self._mode(mode, b)
        null = self.intent_condition(None, b)
        given = self.intent_condition(intent, b)
        if intent is not None and intent_scale == 0.0:
            given = null  # the unconditional prediction alone, exactly
        guided = intent is not None and intent_scale not in (0.0, 1.0)
        shape = (b, self.cfg.horizon, 4, 3)
        timesteps = sched.timesteps
        if noise is not None:
            if tuple(noise.shape) != shape:
                raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
            x = noise
        else:
            x = torch.randn(shape, generator=generator)
        abar = sched.alphas_cumprod
        if guided:  # conditional and unconditional side by side in one batch
            films = self.denoiser.films(timesteps, torch.cat([obs_n, obs_n]), None if m is None else torch.cat([m, m]),
                                        torch.cat([given, null]))  # fmt: skip
        else:
            films = self.denoiser.films(timesteps, obs_n, m, given)
        for k, t in enumerate(timesteps):
            if guided:
                cond, uncond = self.denoiser.denoise(torch.cat([x, x]), [f[k] for f in films]).chunk(2)
                out = uncond + intent_scale * (cond - uncond)
            else:
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


def _window_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of per-window errors err (B,) over the windows whose mask (B, k) is all True (all of them if mask
    is None; 0 if none is)."""
    if mask is None:
        return err.mean()
    keep = mask.all(dim=1).to(err.dtype)
    return (err * keep).sum() / keep.sum().clamp_min(1.0)

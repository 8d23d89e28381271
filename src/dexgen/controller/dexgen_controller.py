"""``DexGenController``: observation (and optionally a fingertip motion command or an intent) in, safe joint targets
out.

Each call: push the observation frame into the history (with the gravity direction appended for a model that
observes it), sample Δx from the diffusion prior (conditioned on the intended object twist for a model with an
intent input: the one given, or the rigid twist fit of the command; guided toward the command when one is given
and α > 0), turn the first steps of Δx into joint targets with the inverse dynamics model,
clamp them to the joint limits and hold the last safe targets if anything is not finite. With ``replan_every`` k > 1
a plan is sampled every k calls and followed in between (chunking): the IDM then sees the plan's remaining
fingertip positions relative to where the fingertips are now.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from dexgen.controller.config import SHIPPED_METHOD, ControllerConfig, check_intent_modes
from dexgen.controller.guidance import (
    command_guide,
    command_intent,
    intent_miss,
    rigid_fraction_of,
    rigid_twist,
)
from dexgen.controller.observation import FRAME_DIM, MAX_FRAME_VALUE, ObservationHistory, check_frames
from dexgen.data.schema import CONTROL_HZ, PRIMITIVES
from dexgen.model.checkpoint import model_primitives
from dexgen.model.dexgen_model import DexGenModel
from dexgen.sim.tasks import AXES

DEFAULT_INTENT_MODES = ("rotate+z", "rotate-z")
"""The rotation primitives mode_from_intent chooses among for a model whose record does not list its training
data's primitives (a record written before ``dexgen train`` stored them)."""
TIPS = slice(32, 44)
TARGETS = slice(16, 32)
MAX_COMMAND_M = 1.0
"""Largest fingertip displacement a command may ask for, metres per component (a hand spans about 0.2 m): larger
values are refused rather than fed to the fits that read the command's intent."""


def fit_to_model(config: ControllerConfig, model: DexGenModel) -> ControllerConfig:
    """``config`` for ``model``: the settings it shares with ``SHIPPED_METHOD`` that the model cannot use fall back
    (best of candidates to one plan for a model without a rotation predictor; the mode from the intent to none for a
    model without mode dropout); any other setting the model cannot use is a one-line ValueError (an
    ``intent_scale`` other than 1 for a model without an intent input)."""
    if model.rotation is None and config.candidates > 1:
        if config.candidates != SHIPPED_METHOD.candidates:
            raise ValueError(f"candidates {config.candidates} needs a model with a rotation predictor; this one "
                             "has none")  # fmt: skip
        config = replace(config, candidates=1)
    if model.cfg.unknown_mode is None and config.mode_from_intent:
        config = replace(config, mode_from_intent=False)
    _check_intent_scale(config, model)
    return config


def _check_intent_scale(config: ControllerConfig, model: DexGenModel) -> None:
    if not model.cfg.intent and config.intent_scale != 1.0:
        raise ValueError(f"intent_scale {config.intent_scale:g} needs a model with an intent input "
                         "(--model.intent); this one has none")  # fmt: skip


def shipped_method(model: DexGenModel) -> ControllerConfig:
    """``SHIPPED_METHOD`` fitted to ``model`` (see ``fit_to_model``)."""
    return fit_to_model(SHIPPED_METHOD, model)


class DexGenController:
    """The DexGen controller for ``batch`` hands (batch 1 takes and returns unbatched arrays too).

    ``act(observation, command=None, *, intent=None, command_tips=None)``: observation (batch, 44) or (44,) float
    (joint positions rad, joint targets in force rad, fingertips m palm frame); command (batch, T, 4, 3) or (T, 4,
    3) fingertip motion relative to now, metres, palm frame, T = the model's horizon; intent and command_tips see
    ``act``. Returns joint targets (batch, 16) or (16,), radians.

    ``gravity_dir`` (3,) or (batch, 3): the direction of gravity in the palm frame (any non-zero length; it is
    normalized), which a robot knows from its arm's joint angles; required for a model that observes gravity
    (``ModelConfig.gravity_obs``), whose frames the controller ends with it, and unused by one that does not.
    ``set_gravity_dir`` changes it as the wrist turns.
    """

    def __init__(self, model: DexGenModel, *, config: ControllerConfig = ControllerConfig(),
                 joint_range: np.ndarray | None = None, batch: int = 1,
                 gravity_dir: np.ndarray | None = None):  # fmt: skip
        if config.candidates > 1 and model.rotation is None:
            raise ValueError("best-of-candidates sampling needs a model with a rotation predictor; this one has none "
                             "(retrain it with this code)")  # fmt: skip
        if config.mode_from_intent and model.cfg.unknown_mode is None:
            raise ValueError("mode_from_intent needs a model trained with a mode input and mode dropout "
                             "(--model.mode primitive --model.mode-dropout P)")  # fmt: skip
        if config.intent_modes is not None or config.mode_from_intent:
            modes = config.intent_modes if config.intent_modes is not None else trained_rotation_modes(model)
            if not modes:
                raise ValueError("mode_from_intent: the model's training data executes no rotation primitive; "
                                 "pass intent_modes")  # fmt: skip
            self._mode_ids, self._mode_axes = _intent_modes(modes)
        _check_intent_scale(config, model)
        if model.cfg.gravity_obs and gravity_dir is None:
            raise ValueError("this model observes gravity (gravity_obs): pass gravity_dir, the direction of gravity "
                             "in the palm frame")  # fmt: skip
        if config.replan_every > model.cfg.horizon - model.cfg.idm_horizon + 1:
            raise ValueError(f"replan_every {config.replan_every} runs past the plan's horizon {model.cfg.horizon}")
        if joint_range is None:
            from dexgen.sim.hand import joint_range as hand_joint_range

            joint_range = hand_joint_range()
        self.model = model.eval()
        self.config = config
        self.batch = batch
        self.lower = torch.as_tensor(joint_range[:, 0], dtype=torch.float32)
        self.upper = torch.as_tensor(joint_range[:, 1], dtype=torch.float32)
        self.history = ObservationHistory(batch, model.cfg.history, dim=model.cfg.obs_dim)
        self._gravity: np.ndarray | None = None
        if gravity_dir is not None:
            self.set_gravity_dir(gravity_dir)
        self.generator = torch.Generator()
        self.latencies_s: list[float] = []
        """Wall time of every ``act`` call, seconds."""
        self.rejected = 0
        """Calls (per hand) whose output was not finite and were replaced by the last safe targets."""
        self.decisions = 0
        """Plans sampled (per hand): one per call, or one per ``replan_every`` calls."""
        self.reset()

    def reset(self, ids: np.ndarray | None = None) -> None:
        """Start over for hands ``ids`` (all by default): forget their history and plan. Resetting all hands also
        re-seeds the sampling noise."""
        self.history.reset(ids)
        if ids is None:
            self.generator.manual_seed(self.config.seed)
            self._plan = None
            self._plan_age = 0
            self._last_safe: torch.Tensor | None = None
        else:
            self._plan_age = self.config.replan_every  # replan at the next call

    def set_gravity_dir(self, gravity_dir) -> None:
        """Set the direction of gravity in the palm frame, (3,) or (batch, 3), any non-zero finite length (it is
        normalized); the frames pushed from the next ``act`` on end with it (for a model that observes gravity)."""
        g = np.asarray(gravity_dir, dtype=np.float64)
        if g.shape not in ((3,), (self.batch, 3)):
            raise ValueError(f"gravity_dir must have shape (3,) or ({self.batch}, 3), got {g.shape}")
        norm = np.linalg.norm(g, axis=-1, keepdims=True)
        if not np.isfinite(g).all() or (norm < 1e-9).any():
            raise ValueError("gravity_dir must be finite and non-zero (the direction of gravity, palm frame)")
        self._gravity = np.broadcast_to(g / norm, (self.batch, 3)).astype(np.float32)

    def _intent(self, hist: torch.Tensor, cmd: torch.Tensor, rigid: torch.Tensor | None = None) -> torch.Tensor:
        """The command's intended object rotation (N, 3) rad/s (``guidance.command_intent`` as configured);
        ``rigid`` (N,) bool: which hands' commands read as rigid turns, if already known."""
        tips = hist[:, -1, TIPS].reshape(-1, 4, 3)
        cfg = self.config
        return command_intent(self.model, hist, cmd, tips, intent=cfg.intent, rigid_fraction=cfg.rigid_fraction,
                              rigid=rigid)  # fmt: skip

    def _modes(self, want: torch.Tensor | None) -> torch.Tensor | None:
        """Per-hand mode ids (N,) (-1: unknown) for intended rotations ``want`` (N, 3) rad/s (None: no command),
        or None for the config's fixed mode."""
        cfg = self.config
        if not cfg.mode_from_intent:
            return None if cfg.mode is None else torch.tensor(cfg.mode)
        if want is None:
            return None
        along = want @ self._mode_axes.T  # (N, modes) rad/s
        speed, best = along.max(dim=1)
        return torch.where(speed >= cfg.mode_min_speed, self._mode_ids[best], torch.full_like(best, -1))

    def _alphas(self, rigid: torch.Tensor | None) -> float | torch.Tensor:
        """The command guidance strength: α, or per hand (N,) α times ``rigid_alpha_scale`` where the command is
        read as a rigid turn (``rigid`` (N,) bool; None when the scale is 1)."""
        cfg = self.config
        if cfg.rigid_alpha_scale == 1.0:
            return cfg.alpha
        return torch.where(rigid, cfg.alpha * cfg.rigid_alpha_scale, cfg.alpha)

    def _sample_plans(self, hist: torch.Tensor, cmd: torch.Tensor | None, mode: torch.Tensor | None = None,
                      alpha: float | torch.Tensor | None = None,
                      twist: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Δx (N, T, 4, 3) m sampled for histories (N, H, D), guided toward ``cmd`` (N, T, 4, 3) m where the config's
        α > 0; ``mode``: the denoiser's mode ids (see ``_modes``); ``alpha``: the command guidance strength (see
        ``_alphas``; None: the config's α); ``twist`` (N, 6) rad/s, m/s: the intent of a model with an intent input
        (None: the null intent)."""
        cfg = self.config
        guide = None
        if cmd is not None and cfg.alpha > 0:
            guide = command_guide(self.model, cmd, cfg.alpha if alpha is None else alpha)
        if twist is None:  # as before intents existed: a model without the input samples exactly as it did
            return self.model.sample(hist, num_inference_steps=cfg.num_inference_steps, generator=self.generator,
                                     guide=guide, mode=mode)  # fmt: skip
        return self.model.sample(hist, num_inference_steps=cfg.num_inference_steps, generator=self.generator,
                                 guide=guide, mode=mode, intent=twist, intent_scale=cfg.intent_scale)  # fmt: skip

    def _check_command(self, command) -> torch.Tensor | None:
        if command is None:
            return None
        c = np.asarray(command, dtype=np.float32)
        if c.ndim == 3 and self.batch == 1:
            c = c[None]
        want = (self.batch, self.model.cfg.horizon, 4, 3)
        if c.shape != want:
            raise ValueError(f"command must have shape {want} (fingertip motion, metres, palm frame), got {c.shape}")
        if not np.isfinite(c).all():
            raise ValueError("command holds NaN or inf")
        if np.abs(c).max(initial=0.0) > MAX_COMMAND_M:
            raise ValueError(f"command moves a fingertip by more than {MAX_COMMAND_M:g} m (largest component "
                             f"{np.abs(c).max():.3g} m): not a hand's fingertip motion")  # fmt: skip
        return torch.from_numpy(c)

    def _check_rows(self, name: str, value, width: int, what: str) -> torch.Tensor | None:
        """``value`` as float32 (batch, width) (a single hand may pass (width,)); None stays None; a one-line
        ValueError for another shape or a value that is not finite."""
        if value is None:
            return None
        v = np.asarray(value, dtype=np.float32)
        if v.ndim == 1 and self.batch == 1:
            v = v[None]
        if v.shape != (self.batch, width):
            raise ValueError(f"{name} must have shape ({self.batch}, {width}) ({what}), got {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError(f"{name} holds NaN or inf")
        return torch.from_numpy(v)

    def _twist(self, intent: torch.Tensor | None, cmd: torch.Tensor | None,
               cmd_tips: torch.Tensor) -> torch.Tensor | None:  # fmt: skip
        """The intent (N, 6) rad/s, m/s for a model with an intent input: ``intent`` if given, else the rigid twist
        fit of the (gain-scaled) command about its own fingertips ``cmd_tips`` (N, 4, 3) m, else None (the null
        intent)."""
        if not self.model.cfg.intent:
            return None
        if intent is not None:
            return intent
        if cmd is None:
            return None
        return rigid_twist(cmd, cmd_tips, dt=1.0 / CONTROL_HZ)

    @torch.inference_mode()
    def act(self, observation, command=None, *, intent=None, command_tips=None) -> np.ndarray:
        """Joint targets (batch, 16) or (16,) rad for one control step (see the class docstring for
        ``observation`` and ``command``).

        ``intent`` (batch, 6) or (6,): the desired object twist, angular velocity (rad/s) then linear velocity (m/s),
        palm frame, over the next horizon, for a model with an intent input; given directly by an object-level
        source (a keyboard, a gamepad), it overrides the twist read from the command. ``command_tips`` (batch, 4, 3)
        or (4, 3) m, palm frame: the fingertips the command's motion starts from, in the command's own layout (a
        person's retargeted hand), for that reading; None: the robot's fingertips now."""
        start = time.perf_counter()
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        frames = check_frames(obs[None] if single else obs, batch=self.batch)
        cmd = self._check_command(command)
        given = self._check_rows("intent", intent, 6, "object twist: rad/s then m/s, palm frame")
        if given is not None and not self.model.cfg.intent:
            raise ValueError("intent given, but this model has no intent input (trained without --model.intent)")
        cmd_tips = None
        if command_tips is not None:
            if cmd is None:
                raise ValueError("command_tips given without a command")
            t = np.asarray(command_tips, dtype=np.float32)
            if t.shape[-2:] != (4, 3):
                raise ValueError(f"command_tips must have shape ({self.batch}, 4, 3) (fingertips, metres, palm "
                                 f"frame), got {t.shape}")  # fmt: skip
            cmd_tips = self._check_rows("command_tips", t.reshape(*t.shape[:-2], 12), 12, "4 x 3 fingertips, metres")
            if float(cmd_tips.abs().max()) > MAX_FRAME_VALUE:
                raise ValueError(f"command_tips beyond {MAX_FRAME_VALUE:g} m of the palm: not fingertips")
        if cmd is not None and self.config.translation_weight != 1.0:
            common = cmd.mean(dim=2, keepdim=True)  # (N, T, 1, 3): the fingertips' common translation
            cmd = cmd - (1.0 - self.config.translation_weight) * common
        if cmd is not None and self.config.command_gain != 1.0:
            cmd = cmd * self.config.command_gain
        if self.model.cfg.gravity_obs:
            frames = np.concatenate([frames, self._gravity], axis=1)
        hist = torch.from_numpy(self.history.push(frames).copy())
        tips_now = hist[:, -1, TIPS].reshape(-1, 1, 4, 3)
        cfg = self.config
        if self._plan is None or self._plan_age >= cfg.replan_every:
            k = cfg.candidates if cmd is not None else 1
            wants_intent = cmd is not None and (k > 1 or cfg.mode_from_intent)
            scales_alpha = cmd is not None and cfg.alpha > 0 and cfg.rigid_alpha_scale != 1.0
            rigid = None  # per hand, read once per decision (not per candidate), only where a setting uses it
            if (wants_intent and cfg.intent == "auto") or scales_alpha:
                rigid = rigid_fraction_of(cmd, tips_now[:, 0]) >= cfg.rigid_fraction
            want = self._intent(hist, cmd, rigid) if wants_intent else None
            mode = self._modes(want)
            alpha = self._alphas(rigid) if cmd is not None and cfg.alpha > 0 else None
            twist = self._twist(given, cmd, tips_now[:, 0] if cmd_tips is None else cmd_tips.view(-1, 4, 3))
            if k > 1:  # k plans per hand, side by side in the batch, then the best of each hand's k
                hist_k = hist.repeat_interleave(k, 0)
                mode_k = mode.repeat_interleave(k, 0) if mode is not None and mode.ndim == 1 else mode
                alpha_k = alpha.repeat_interleave(k, 0) if isinstance(alpha, torch.Tensor) else alpha
                twist_k = None if twist is None else twist.repeat_interleave(k, 0)
                many = self._sample_plans(hist_k, cmd.repeat_interleave(k, 0), mode_k, alpha_k, twist_k)
                miss = intent_miss(self.model.predict_rotation(hist_k, many), want.repeat_interleave(k, 0))
                best = miss.view(-1, k).argmin(dim=1)
                dx = many.view(-1, k, *many.shape[1:])[torch.arange(len(best)), best]
            else:
                dx = self._sample_plans(hist, cmd, mode, alpha, twist)
            self._plan, self._plan_age = tips_now + dx, 0  # absolute fingertip positions, palm frame
            self.decisions += len(dx)
        dx = self._plan[:, self._plan_age :] - tips_now
        self._plan_age += 1
        targets = self.model.idm_targets(hist, dx)
        targets = torch.maximum(torch.minimum(targets, self.upper), self.lower)
        ok = torch.isfinite(targets).all(dim=1)
        if not bool(ok.all()):  # hold the last safe targets; before any, the targets in force, within the limits
            fallback = self._last_safe if self._last_safe is not None else hist[:, -1, TARGETS]
            fallback = torch.maximum(torch.minimum(fallback, self.upper), self.lower)
            targets = torch.where(ok[:, None], targets, fallback)
            self.rejected += int((~ok).sum())
        self._last_safe = targets
        out = targets.numpy().astype(np.float64)
        self.latencies_s.append(time.perf_counter() - start)
        return out[0] if single else out


def trained_rotation_modes(model: DexGenModel) -> tuple[str, ...]:
    """The rotation primitives that the model's training data executes (``DEFAULT_INTENT_MODES`` for a record
    that does not say), in ``PRIMITIVES`` order."""
    seen = model_primitives(model)
    if seen is None:
        return DEFAULT_INTENT_MODES
    return tuple(p for p in PRIMITIVES if p in seen and p.startswith("rotate"))


def _intent_modes(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Primitive ids (M,) and unit axes (M, 3) of rotation primitives named as in ``PRIMITIVES``."""
    check_intent_modes(names)
    ids = torch.tensor([PRIMITIVES.index(n) for n in names])
    axes = torch.tensor([AXES[n.removeprefix("rotate")] for n in names], dtype=torch.float32)
    return ids, axes


def frame_from_policy_obs(policy_obs: np.ndarray) -> np.ndarray:
    """The controller's frame (N, 44) from a ``HandEnv`` policy observation with history 1 (N, 44 + command)."""
    return np.asarray(policy_obs)[:, :FRAME_DIM]

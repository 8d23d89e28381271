"""The model's architecture and diffusion settings, stored with every checkpoint."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from dexgen.data.windows import INTENT_DIM
from dexgen.sim.randomization import RandomizationConfig

MODES = ("none", "primitive")
"""Optional mode inputs: none, or the primitive id of the dataset (dexgen.data.schema.PRIMITIVES)."""

TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")
"""How DDIM spaces its few timesteps over the training steps (diffusers' ``timestep_spacing``)."""

GRAVITY_DIM = 3
"""Features the gravity direction adds to an observation frame (a unit vector, palm frame)."""

OLD_RECORD_DEFAULTS = {"rotation_hidden": 0, "timestep_spacing": "leading", "joint_noise_std": 0.0}
"""The values of settings a record written before they existed was trained and sampled with (its model then
behaves as it did: no rotation predictor, DDIM's "leading" spacing, noise-free training observations)."""


@dataclass(frozen=True)
class ModelConfig:
    """Shapes and sizes of the diffusion denoiser and the inverse dynamics model."""

    history: int = 3
    """Observation frames fed to both networks (the newest last), control steps of 50 ms."""
    horizon: int = 8
    """Future fingertip steps T of the diffusion sample Δx (T, 4, 3), control steps of 50 ms."""
    obs_dim: int = 44
    """Features per observation frame: joint positions (16), joint targets (16), fingertips (12); set from the data."""
    hidden: int = 256
    """Width of the denoiser's residual blocks."""
    blocks: int = 3
    """Residual blocks of the denoiser, each FiLM-conditioned on observation, timestep and mode."""
    cond_dim: int = 256
    """Width of the conditioning embedding (observation history + timestep + mode)."""
    num_train_timesteps: int = 100
    """Diffusion steps of the DDPM forward process."""
    beta_schedule: str = "squaredcos_cap_v2"
    """Noise schedule name (a diffusers beta_schedule)."""
    prediction_type: str = "sample"
    """What the denoiser predicts: sample (the clean Δx) or epsilon (the noise; the shipped models). Sampling from
    pure noise ("trailing" spacing) needs sample: at the last training step ᾱ is 2.4e-7, and an ε prediction's
    clean estimate multiplies its error by 1 / sqrt(ᾱ) (``DexGenModel.sampler`` refuses the pair)."""
    num_inference_steps: int = 8
    """Default DDIM steps when sampling (a first-class option of every sampler call)."""
    timestep_spacing: str = "trailing"
    """DDIM timestep spacing (leading, trailing or linspace). "trailing" starts sampling at the last training step,
    from pure noise (8 of 100 steps: 99, 87, 74, ..., 11); diffusers' default "leading" starts at 84 (84, 72, ..., 0)
    from pure noise too, where the model expects a sample that still holds some signal. Records from before the
    setting sampled with "leading"."""
    mode: str = "none"
    """Optional mode input: none or primitive (the primitive id, embedded)."""
    num_modes: int = 11
    """Number of mode values (len(PRIMITIVES)) when mode is primitive."""
    mode_dropout: float = 0.0
    """Fraction of training windows whose mode is replaced by an extra "unknown" mode (id ``num_modes``), so that
    one model samples both each primitive's motion and, with the mode unknown, the mixture of all of them (as
    classifier-free guidance trains its unconditional model). 0: every window keeps its mode and the model
    needs one at every call."""
    gravity_obs: bool = False
    """The observation frame ends with the gravity direction in the palm frame (3, unit vector; a robot knows it
    from its arm), so that one model serves every wrist orientation; ``obs_dim`` counts it. It is not normalized
    (already of unit scale; data of one wrist would otherwise give it a zero spread)."""
    intent: bool = False
    """Condition the denoiser on an intent: the desired object twist over the horizon, angular velocity (3, rad/s)
    then linear velocity (3, m/s), palm frame (normalized by training statistics). In training the label is the
    object's realized twist; at run time the operator's command gives it. Sampling without one uses the null
    intent (see ``intent_dropout``); classifier-free guidance scales it (``DexGenModel.sample``)."""
    intent_dropout: float = 0.2
    """With ``intent``: share of training windows whose intent is replaced by the null intent (zeros and a cleared
    flag), so the same model samples without an intent and classifier-free guidance can contrast the two."""
    joint_noise_std: float = RandomizationConfig().joint_noise_std
    """Standard deviation of Gaussian noise added to the joint positions of every training observation frame,
    radians (the dataset stores noise-free joints; the controller reads them with the environment's joint
    observation noise, whose default this is). 0: noise-free (records from before the setting)."""
    idm_hidden: int = 512
    """Width of the inverse dynamics MLP."""
    idm_layers: int = 3
    """Hidden layers of the inverse dynamics MLP."""
    idm_horizon: int = 4
    """Leading steps of Δx the inverse dynamics model sees (<= horizon)."""
    rotation_hidden: int = 256
    """Width of the object-rotation predictor (the object's mean angular velocity over the horizon from the
    observation history and Δx), which ranks the controller's candidate plans and reads a command's intent; 0: no
    predictor."""
    rotation_noise: float = 0.5
    """Largest standard deviation of the Gaussian noise added to the normalized Δx the rotation predictor sees in
    training (drawn uniformly per window). Guidance evaluates it on denoising estimates, and the gradient of a
    predictor fitted to clean motion only is exploited: it turned objects the wrong way."""

    def __post_init__(self) -> None:
        if self.history < 1 or self.horizon < 1:
            raise ValueError(f"history and horizon must be at least 1, got {self.history} and {self.horizon}")
        if not 1 <= self.idm_horizon <= self.horizon:
            raise ValueError(f"idm_horizon must be in [1, horizon={self.horizon}], got {self.idm_horizon}")
        if self.prediction_type not in ("epsilon", "sample"):
            raise ValueError(f"prediction_type must be epsilon or sample, got {self.prediction_type!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.mode_dropout < 1.0:
            raise ValueError(f"mode_dropout must be in [0, 1), got {self.mode_dropout}")
        if self.mode_dropout > 0 and self.mode == "none":
            raise ValueError("mode_dropout needs mode primitive")
        if self.num_inference_steps < 1 or self.num_inference_steps > self.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be in [1, {self.num_train_timesteps}]")
        if self.timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(f"timestep_spacing must be one of {', '.join(TIMESTEP_SPACINGS)}, "
                             f"got {self.timestep_spacing!r}")  # fmt: skip
        if self.gravity_obs and self.obs_dim <= GRAVITY_DIM:
            raise ValueError(f"gravity_obs needs obs_dim > {GRAVITY_DIM} (the frame ends with gravity), "
                             f"got {self.obs_dim}")  # fmt: skip
        if not 0.0 < self.intent_dropout < 1.0:
            raise ValueError(f"intent_dropout must be in (0, 1): the model needs both the intent and the null "
                             f"intent, got {self.intent_dropout}")  # fmt: skip
        if not (math.isfinite(self.joint_noise_std) and self.joint_noise_std >= 0):
            raise ValueError(f"joint_noise_std must be finite and >= 0, got {self.joint_noise_std}")
        if self.rotation_hidden < 0 or self.rotation_noise < 0:
            raise ValueError("rotation_hidden and rotation_noise must be >= 0")

    @property
    def unknown_mode(self) -> int | None:
        """The id of the "unknown" mode of a model trained with mode dropout (None: it has none)."""
        return self.num_modes if self.mode_dropout > 0 else None

    @property
    def intent_dim(self) -> int:
        """Values of an intent (0 for a model without the input)."""
        return INTENT_DIM if self.intent else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """The config stored as ``d``; a ValueError naming unknown keys (a checkpoint from other code). Settings the
        record lacks take ``OLD_RECORD_DEFAULTS`` (how it was made), then the field defaults."""
        d = dict(d)
        if d.pop("risk_hidden", 0):
            raise ValueError("the model has a drop-risk critic (risk_hidden > 0), which this code no longer reads: "
                             "use the model it was added to")  # fmt: skip
        d.pop("risk_window", None)  # records of that time carry the critic's settings even without one
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}")
        return cls(**{**OLD_RECORD_DEFAULTS, **d})

"""The model's architecture and diffusion settings, stored with every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MODES = ("none", "primitive")
"""Optional mode inputs: none, or the primitive id of the dataset (dexgen.data.schema.PRIMITIVES)."""


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
    prediction_type: str = "epsilon"
    """What the denoiser predicts: epsilon (the noise) or sample (the clean Δx)."""
    num_inference_steps: int = 8
    """Default DDIM steps when sampling (a first-class option of every sampler call)."""
    mode: str = "none"
    """Optional mode input: none or primitive (the primitive id, embedded)."""
    num_modes: int = 11
    """Number of mode values (len(PRIMITIVES)) when mode is primitive."""
    mode_dropout: float = 0.0
    """Fraction of training windows whose mode is replaced by an extra "unknown" mode (id ``num_modes``), so that
    one model samples both each primitive's motion and, with the mode unknown, the mixture of all of them (as
    classifier-free guidance trains its unconditional model). 0: every window keeps its mode and the model
    needs one at every call."""
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
        if self.rotation_hidden < 0 or self.rotation_noise < 0:
            raise ValueError("rotation_hidden and rotation_noise must be >= 0")

    @property
    def unknown_mode(self) -> int | None:
        """The id of the "unknown" mode of a model trained with mode dropout (None: it has none)."""
        return self.num_modes if self.mode_dropout > 0 else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """The config stored as ``d``; a ValueError naming unknown keys (a checkpoint from other code)."""
        d = dict(d)
        if d.pop("risk_hidden", 0):
            raise ValueError("the model has a drop-risk critic (risk_hidden > 0), which this code no longer reads: "
                             "use the model it was added to")  # fmt: skip
        d.pop("risk_window", None)  # records of that time carry the critic's settings even without one
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}")
        return cls(**{"rotation_hidden": 0, **d})  # records from before the rotation predictor have none

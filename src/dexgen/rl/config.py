"""PPO hyperparameters as a typed config, turned into the dict that rsl-rl's PPO and models expect."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PPOConfig:
    """PPO and network settings (rsl-rl's PPO with an asymmetric actor-critic)."""

    actor_hidden: tuple[int, ...] = (256, 256, 128)
    """Hidden layer widths of the actor MLP."""
    critic_hidden: tuple[int, ...] = (256, 256, 128)
    """Hidden layer widths of the critic MLP."""
    activation: str = "elu"
    """Activation of both MLPs."""
    actor_privileged: bool = True
    """Let the actor see the privileged group too (experts only generate data, so they may)."""
    init_noise_std: float = 0.8
    """Initial standard deviation of the Gaussian policy (in action units)."""
    steps_per_env: int = 24
    """Control steps collected per environment per iteration."""
    learning_epochs: int = 5
    """Passes over each rollout."""
    mini_batches: int = 4
    """Mini-batches per pass."""
    clip_param: float = 0.2
    """PPO ratio clip."""
    gamma: float = 0.99
    """Discount."""
    lam: float = 0.95
    """GAE lambda."""
    learning_rate: float = 5e-4
    """Initial Adam learning rate (then adapted to keep the KL near ``desired_kl``, unless the schedule is fixed)."""
    schedule: str = "adaptive"
    """Learning-rate schedule: adaptive (raise or lower the rate to keep the KL near ``desired_kl``) or fixed
    (``learning_rate`` throughout; for fine-tuning a trained expert gently, since the adaptive rule soon raises a
    small starting rate to whatever keeps the KL at its target)."""
    desired_kl: float = 0.01
    """Target KL divergence of the adaptive learning-rate schedule."""
    entropy_coef: float = 0.0
    """Entropy bonus (0: with a bonus the action noise of the rotation experts grew instead of shrinking)."""
    value_loss_coef: float = 1.0
    """Value loss weight."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""

    def __post_init__(self):
        if self.schedule not in ("adaptive", "fixed"):
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}: use adaptive or fixed")

    def to_rsl(self) -> dict:
        """The training config dict of rsl-rl's PPO.construct_algorithm."""
        actor_groups = ["policy", "privileged"] if self.actor_privileged else ["policy"]
        return {
            "num_steps_per_env": self.steps_per_env,
            "obs_groups": {"actor": actor_groups, "critic": ["policy", "privileged"]},
            "multi_gpu": None,
            "actor": {
                "class_name": "MLPModel",
                "hidden_dims": list(self.actor_hidden),
                "activation": self.activation,
                "obs_normalization": True,
                "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": self.init_noise_std},
            },
            "critic": {
                "class_name": "MLPModel",
                "hidden_dims": list(self.critic_hidden),
                "activation": self.activation,
                "obs_normalization": True,
            },
            "algorithm": {
                "class_name": "PPO",
                "num_learning_epochs": self.learning_epochs,
                "num_mini_batches": self.mini_batches,
                "clip_param": self.clip_param,
                "gamma": self.gamma,
                "lam": self.lam,
                "value_loss_coef": self.value_loss_coef,
                "entropy_coef": self.entropy_coef,
                "learning_rate": self.learning_rate,
                "max_grad_norm": self.max_grad_norm,
                "schedule": self.schedule,
                "desired_kl": self.desired_kl,
            },
        }

"""Tiny training configs shared by the RL tests."""

from dexgen.rl.config import PPOConfig
from dexgen.rl.train import TrainExpertConfig

TINY_PPO = PPOConfig(steps_per_env=8, actor_hidden=(32,), critic_hidden=(32,), mini_batches=2, learning_epochs=2)


def tiny_config(out, **overrides) -> TrainExpertConfig:
    base = dict(envs=6, iterations=2, save_interval=2, out=str(out), objects="cube_60,sphere_r30", threads=1,
                ppo=TINY_PPO)  # fmt: skip
    base.update(overrides)
    return TrainExpertConfig(**base)

"""RL stage: PPO experts (through rsl-rl) that generate the motion dataset."""

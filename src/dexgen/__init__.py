"""dexgen: dexterous teleoperation by guided diffusion over RL-generated in-hand motion."""

__version__ = "0.1.0"

"""Run-time control: the DexGen controller (sampling, guidance, inverse dynamics, safety) behind a small
hardware-agnostic API, ``reset()`` and ``act(observation, command) -> joint targets``."""

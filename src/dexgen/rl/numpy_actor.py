"""A saved expert's deterministic actor evaluated with numpy alone.

The collector's workers act with this instead of ``dexgen.rl.expert.Expert``: importing torch and rsl-rl takes
about 2.5 s here, which was half of a short collection's start-up. It computes what rsl-rl's ``MLPModel`` computes
in inference (concatenate the actor's observation groups, normalize them with the saved running statistics, then
the MLP), with the inputs that never varied in training pinned as ``dexgen.rl.expert.Expert`` does;
``tests/test_numpy_actor.py`` checks that it matches the torch actor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dexgen.rl.expert_files import ExpertError, read_expert_files

NORMALIZER_EPS = 1e-2
"""Added to the running standard deviation by rsl-rl's ``EmpiricalNormalization`` (its default, which the experts'
actors use)."""

CONSTANT_STD = 1e-6
"""An actor input whose running standard deviation is below this never varied in training (e.g. the shape-code
entry of a shape family no training object has)."""


def constant_inputs(std: np.ndarray) -> np.ndarray:
    """Bool mask of the actor inputs that never varied in training, from the normalizer's std (..., dim).

    At inference such an input is pinned to its training value (normalized: 0). The weights that read it were never
    trained (their gradient is 0 while it is constant), and any other value would be scaled by 1 / NORMALIZER_EPS
    = 100 (docs/results.md, "Inputs that never varied in training")."""
    return np.asarray(std).reshape(-1) < CONSTANT_STD


ACTIVATIONS = {
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
}
"""The activations this actor can evaluate, by rsl-rl's name."""


class NumpyActor:
    """Deterministic actor of a trained expert, as numpy float32 weights."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], mean: np.ndarray, std: np.ndarray,
                 groups: list[str], activation: str, record: dict):  # fmt: skip
        scale = np.where(constant_inputs(std), 0.0, 1.0 / (std + NORMALIZER_EPS)).astype(np.float32)
        self.layers, self.mean, self.scale = layers, mean, scale
        self.groups, self.activation, self.record = groups, ACTIVATIONS[activation], record

    @classmethod
    def load(cls, path: str | Path) -> NumpyActor:
        """Load an expert's actor; an ExpertError with a one-line reason if its files are missing, corrupt or do not
        match each other."""
        record, state = read_expert_files(path)
        try:
            ppo, obs_dims = record["ppo"], record["obs_dims"]
            hidden, activation = [int(h) for h in ppo["actor_hidden"]], ppo["activation"]
            groups = ["policy", "privileged"] if ppo["actor_privileged"] else ["policy"]
            sizes = [sum(int(obs_dims[g]) for g in groups), *hidden, int(record["num_actions"])]
        except (KeyError, TypeError, ValueError) as e:
            raise ExpertError(f"expert record {Path(path).with_suffix('.json')} is incomplete: {e!r}") from None
        if activation not in ACTIVATIONS:
            raise ExpertError(f"expert {path}: activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
        expected = {"obs_normalizer._mean": (1, sizes[0]), "obs_normalizer._std": (1, sizes[0])}
        for i in range(len(sizes) - 1):  # rsl-rl's MLP: Linear, activation, Linear, ... so linears at even indices
            expected[f"mlp.{2 * i}.weight"] = (sizes[i + 1], sizes[i])
            expected[f"mlp.{2 * i}.bias"] = (sizes[i + 1],)
        for name, shape in expected.items():
            if name not in state or state[name].shape != shape:
                got = "missing" if name not in state else f"shape {state[name].shape}"
                raise ExpertError(f"expert {path} does not match its record: {name} is {got}, expected {shape}")
        layers = [(state[f"mlp.{2 * i}.weight"].T.astype(np.float32), state[f"mlp.{2 * i}.bias"].astype(np.float32))
                  for i in range(len(sizes) - 1)]  # fmt: skip
        mean = state["obs_normalizer._mean"].astype(np.float32)
        std = state["obs_normalizer._std"].astype(np.float32)
        return cls(layers, mean, std, groups, activation, record)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """(N, num_actions) float64 deterministic actions for observation groups (N, dim) each."""
        x = np.concatenate([np.asarray(obs[g], dtype=np.float32) for g in self.groups], axis=1)
        x = (x - self.mean) * self.scale
        for i, (weight, bias) in enumerate(self.layers):
            x = x @ weight + bias
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x.astype(np.float64)

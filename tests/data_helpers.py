"""Small synthetic datasets for the data-stage tests: physically shaped random walks, no simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dexgen.data.schema import PRIMITIVES, STEP_FIELDS, axis_vector, primitive_param
from dexgen.data.store import EpisodeWriter

FINGER_BASES = np.array([[0.08, -0.04, 0.03], [0.08, 0.0, 0.03], [0.08, 0.04, 0.03], [0.0, -0.06, 0.04]])
"""Rough fingertip positions of an open hand, metres, palm frame."""


def synthetic_episode(rng: np.random.Generator, steps: int) -> dict[str, np.ndarray]:
    """One episode of ``steps`` control steps: joint targets random-walk, joints follow them with a lag, fingertips
    move smoothly with the joints, the object drifts near the grasp centre."""
    n = steps
    targets = np.empty((n + 1, 16))
    targets[0] = rng.uniform(0.0, 0.8, 16)
    actions = rng.normal(0.0, 0.02, (n, 16))
    for t in range(n):
        targets[t + 1] = np.clip(targets[t] + actions[t], -0.3, 1.6)
    q = np.empty((n, 16))
    q[0] = targets[0]
    for t in range(1, n):
        q[t] = q[t - 1] + 0.5 * (targets[t] - q[t - 1])
    bend = q.reshape(n, 4, 4).sum(-1)  # (n, 4) total flexion of each finger
    tips = FINGER_BASES + 0.03 * np.stack((np.cos(bend), np.zeros_like(bend), np.sin(bend)), axis=-1)
    pid = int(rng.integers(len(PRIMITIVES)))
    name = PRIMITIVES[pid]
    command = rng.uniform(0.0, 1.0, 16) if name == "grasp_to_grasp" else axis_vector(name[-2:])
    obj_pos = np.array([0.02, 0.0, 0.055]) + np.cumsum(rng.normal(0.0, 1e-3, (n, 3)), axis=0)
    quat = rng.normal(size=(n, 4))
    dropped = np.zeros(n, dtype=bool)
    dropped[-1] = bool(rng.random() < 0.3)
    realized_angvel = rng.normal(0.0, 0.5, (n, 3))
    return {
        "joint_pos": q,
        "joint_target": targets[:n],
        "action": actions,
        "fingertip_pos": tips,
        "primitive_id": np.full(n, pid),
        "primitive_param": np.repeat(primitive_param(command)[None], n, axis=0),
        "object_pos": obj_pos,
        "object_quat": quat / np.linalg.norm(quat, axis=-1, keepdims=True),
        "object_linvel": np.gradient(obj_pos, 0.05, axis=0),
        "object_angvel": rng.normal(0.0, 0.5, (n, 3)),
        "dropped": dropped,
        "realized_angvel": realized_angvel,
        "realized_linvel": np.diff(obj_pos, axis=0, append=obj_pos[-1:]) / 0.05,
        "gravity_dir": np.repeat([[0.0, 0.0, -1.0]], n, axis=0),
    }


def episode_for(i: int) -> dict[str, np.ndarray]:
    """Episode i of a deterministic sequence (20 to 119 steps), so a test can tell exactly which episodes a file
    holds."""
    rng = np.random.default_rng(1000 + i)
    return synthetic_episode(rng, int(rng.integers(20, 120)))


def marker_episode(value: float, steps: int) -> dict[str, np.ndarray]:
    """An episode whose every float field at step t holds ``value + t``: a window that crosses into another
    episode (whose values differ by far more than its length) shows at once."""
    ramp = value + np.arange(steps, dtype=np.float64)
    out = {}
    for name, f in STEP_FIELDS.items():
        shape = (steps, *f.shape)
        out[name] = np.broadcast_to(ramp.reshape(-1, *([1] * len(f.shape))), shape).copy()
    out["primitive_id"] = np.zeros(steps, dtype=np.int8)
    out["dropped"] = np.zeros(steps, dtype=bool)
    return out


def write_synthetic_dataset(
    path: str | Path, *, episodes: int, steps: int | tuple[int, int], seed: int, chunk_rows: int = 64
) -> Path:
    """A dataset of ``episodes`` random-walk episodes of ``steps`` steps each (or a length drawn from the range
    ``(low, high)``, inclusive), written through ``EpisodeWriter``."""
    rng = np.random.default_rng(seed)
    with EpisodeWriter(path, command="tests", seed=seed, chunk_rows=chunk_rows) as writer:
        for _ in range(episodes):
            n = steps if isinstance(steps, int) else int(rng.integers(steps[0], steps[1] + 1))
            writer.append_episode(synthetic_episode(rng, n), object_name="cube_60", wrist="palm_up")
    return Path(path)

"""Vectorized quaternion helpers, (w, x, y, z) convention as in MuJoCo. Shapes broadcast over leading axes."""

from __future__ import annotations

import numpy as np


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b, (..., 4)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (inverse of a unit quaternion), (..., 4)."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ),
        axis=-1,
    ).reshape(*q.shape[:-1], 3, 3)  # fmt: skip


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vectors (axis times angle in [0, pi], radians), (..., 3), of unit quaternions (..., 4)."""
    q = np.where(q[..., :1] < 0, -q, q)  # shortest rotation
    vec = q[..., 1:]
    sin_half = np.linalg.norm(vec, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., :1])
    # angle / sin(angle / 2) -> 2 as the angle -> 0
    scale = np.where(sin_half > 1e-9, angle / np.maximum(sin_half, 1e-12), 2.0)
    return vec * scale


def axis_angle_quat(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) of rotations by ``angle`` (...) radians about unit ``axis`` (..., 3)."""
    half = 0.5 * np.asarray(angle)[..., None]
    return np.concatenate((np.cos(half), np.sin(half) * axis), axis=-1)


def random_quat(rng: np.random.Generator, n: int) -> np.ndarray:
    """n uniformly random unit quaternions, (n, 4)."""
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)

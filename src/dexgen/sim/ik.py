"""Fingertip inverse kinematics: joint targets that put the fingertips where asked.

The raw-teleoperation baseline turns an operator's fingertip positions into joint targets with it (damped least
squares, DLS, with no learned prior and no notion of the object); grasp generation places fingertips on an object's
surface with it.

Conventions (shared with ``HandBatch.fingertips``): fingertip positions are metres in the palm frame, fingers in
``constants.FINGERS`` order (index, middle, ring, thumb); joint vectors are radians in ``constants.JOINT_NAMES``
order, finger ``f`` owning joints ``4f .. 4f + 3``. The palm frame does not depend on the wrist orientation, so one
palm-up model serves every wrist.
"""

from __future__ import annotations

import mujoco
import numpy as np

from dexgen.sim import constants as C
from dexgen.sim.hand import ModelIndex, build_model
from dexgen.sim.objects import resolve_objects

JOINTS_PER_FINGER = C.NUM_JOINTS // C.NUM_FINGERTIPS


def _check_array(name: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float64 array of ``shape``; a one-line ValueError for a wrong shape or NaN / inf."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or inf")
    return arr


class FingertipIK:
    """Damped least-squares IK from palm-frame fingertip positions to the hand's 16 joint targets.

    Each finger is its own 4-joint chain (no joint moves two fingertips), so the fingers are solved independently:
    per iteration and finger, ``dq = J^T (J J^T + damping^2 I)^-1 e`` with ``e`` (3,) the fingertip error, metres,
    and ``J`` (3, 4) the fingertip's positional Jacobian w.r.t. the finger's joints, palm frame.

    The instance owns one ``MjData`` of the hand: it is cheap to keep, but not safe to share between threads.

    Args:
        damping: DLS damping ``lambda``, metres; larger trades accuracy for calm behaviour near singular poses
            (a straight finger) and toward unreachable targets.
        iterations: most DLS iterations per solve. With ``max_step`` it bounds how far one solve moves a finger
            (``iterations * max_step`` radians): a command far from the current pose is reached over several
            control steps, each solve warm-started from the measured joints, rather than in one jump.
        max_step: largest norm of one finger's joint update per iteration, radians.
        tolerance: a solve stops early once every solved fingertip is closer than this to its target, metres.
        hand: the hand model whose kinematics are solved (``constants.HANDS``).
    """

    def __init__(self, *, damping: float = 0.01, iterations: int = 10, max_step: float = 0.2, tolerance: float = 1e-4,
                 hand: str = C.DEFAULT_HAND):  # fmt: skip
        # Zero damping would make J J^T singular at a straight finger or with joints held at limits.
        if not (np.isfinite(damping) and damping > 0):
            raise ValueError(f"damping must be finite and positive, got {damping}")
        if int(iterations) != iterations or iterations < 1:
            raise ValueError(f"iterations must be a positive integer, got {iterations}")
        if not (np.isfinite(max_step) and max_step > 0):
            raise ValueError(f"max_step must be finite and positive, got {max_step}")
        if not (np.isfinite(tolerance) and tolerance > 0):
            raise ValueError(f"tolerance must be finite and positive, got {tolerance}")
        self.damping = float(damping)
        self.iterations = int(iterations)
        self.max_step = float(max_step)
        self.tolerance = float(tolerance)

        # The object is irrelevant to hand kinematics; any compiled hand model has the same chains.
        self.model = build_model(resolve_objects("train")[0], hand=hand)
        self.data = mujoco.MjData(self.model)
        self.index = ModelIndex(self.model)
        self.joint_range = self.index.joint_range.copy()
        """(16, 2) lower and upper joint limits, radians."""
        self._lower, self._upper = self.joint_range[:, 0], self.joint_range[:, 1]
        self._jacp = np.zeros((3, self.model.nv))

    # ---- kinematics -----------------------------------------------------------------------------------------------
    def _set_q(self, q: np.ndarray, *, jacobian: bool) -> None:
        self.data.qpos[self.index.hand_qpos] = q
        mujoco.mj_kinematics(self.model, self.data)
        if jacobian:
            # mj_jacSite reads cdof and subtree_com, which mj_comPos derives from the kinematics.
            mujoco.mj_comPos(self.model, self.data)

    def _tips(self) -> np.ndarray:
        # Palm frame as in HandBatch.fingertips: (world - palm origin) @ palm rotation. Taken from the palm body's
        # pose rather than assumed to be the identity, so the two agree whatever the model's wrist.
        palm = self.index.palm_body
        world = self.data.site_xpos[self.index.fingertip_sites]
        return (world - self.data.xpos[palm]) @ self.data.xmat[palm].reshape(3, 3)

    def _finger_jacobian(self, finger: int) -> np.ndarray:
        """(3, 4) d(fingertip, palm frame) / d(finger joints), m/rad; needs ``_set_q(..., jacobian=True)``."""
        mujoco.mj_jacSite(self.model, self.data, self._jacp, None, int(self.index.fingertip_sites[finger]))
        cols = self.index.hand_dof[finger * JOINTS_PER_FINGER : (finger + 1) * JOINTS_PER_FINGER]
        palm_rot = self.data.xmat[self.index.palm_body].reshape(3, 3)
        return palm_rot.T @ self._jacp[:, cols]

    def forward(self, q: np.ndarray) -> np.ndarray:
        """(4, 3) fingertip positions, metres, palm frame, for joint positions ``q`` (16,), radians.

        Agrees with ``HandBatch.fingertips()`` / ``HandEnv.fingertips()`` for the same joint positions.
        """
        q = _check_array("q", q, (C.NUM_JOINTS,))
        self._set_q(q, jacobian=False)
        return self._tips()

    # ---- inverse kinematics ---------------------------------------------------------------------------------------
    def _finger_step(self, q_f: np.ndarray, jac: np.ndarray, err: np.ndarray, sl: slice) -> np.ndarray:
        """(4,) DLS update of one finger, radians, norm at most ``max_step``, for its error ``err`` (3,), metres."""
        damp2 = self.damping**2 * np.eye(3)
        free = np.ones(JOINTS_PER_FINGER, dtype=bool)
        # A joint resting on a limit that the step would push further is taken out and the step solved again with
        # the others: plain clamping would throw that part of the step away and stall near the limit, so targets
        # next to a limit (common: a curled or straight finger) would need many more iterations.
        for _ in range(JOINTS_PER_FINGER):
            j = jac * free
            dq = j.T @ np.linalg.solve(j @ j.T + damp2, err)
            blocked = free & (((q_f <= self._lower[sl]) & (dq < 0)) | ((q_f >= self._upper[sl]) & (dq > 0)))
            if not blocked.any():
                break
            free &= ~blocked
        norm = np.linalg.norm(dq)
        # The linearization holds only for small rotations: a long step toward a far target would overshoot.
        if norm > self.max_step:
            dq *= self.max_step / norm
        return dq

    def solve(self, q: np.ndarray, targets: np.ndarray, *, mask: np.ndarray | None = None) -> np.ndarray:
        """Joint targets (16,), radians, within the joint limits, that bring the fingertips toward ``targets``.

        Args:
            q: (16,) joint positions to start from, radians (typically the measured ones); clamped to the limits
                first, so the answer stays near the current pose, which is what keeps teleoperation smooth.
            targets: (4, 3) commanded fingertip positions, metres, palm frame. Unreachable ones are approached as
                far as the limits allow, never failed on.
            mask: optional (4,) bool; fingers with False are not solved and keep ``q`` (clamped to the limits).

        Returns:
            (16,) joint targets, radians, JOINT_NAMES order.
        """
        q = _check_array("q", q, (C.NUM_JOINTS,))
        targets = _check_array("targets", targets, (C.NUM_FINGERTIPS, 3))
        if mask is None:
            active = np.ones(C.NUM_FINGERTIPS, dtype=bool)
        else:
            mask_arr = np.asarray(mask)
            if mask_arr.shape != (C.NUM_FINGERTIPS,) or mask_arr.dtype != np.bool_:
                raise ValueError(
                    f"mask must be a bool array of shape ({C.NUM_FINGERTIPS},), got {mask_arr.dtype} {mask_arr.shape}"
                )
            active = mask_arr.copy()

        q = np.clip(q, self._lower, self._upper)
        for _ in range(self.iterations):
            self._set_q(q, jacobian=True)
            err = targets - self._tips()
            # A finger already within tolerance stops moving, so converged fingers do not jitter while others work.
            active &= np.linalg.norm(err, axis=1) >= self.tolerance
            if not active.any():
                break
            for f in np.flatnonzero(active):
                sl = slice(f * JOINTS_PER_FINGER, (f + 1) * JOINTS_PER_FINGER)
                dq = self._finger_step(q[sl], self._finger_jacobian(f), err[f], sl)
                q[sl] = np.clip(q[sl] + dq, self._lower[sl], self._upper[sl])
        return q

    def follow(self, frames: np.ndarray, command: np.ndarray) -> np.ndarray:
        """Raw teleoperation: joint targets (N, 16), radians, that move the fingertips by the command's first step,
        from controller frames (N, 44) (joint positions, targets in force, fingertips, palm frame) and commands
        (N, T, 4, 3), metres, relative to those fingertips; solved from the measured joints."""
        frames = np.asarray(frames, dtype=np.float64)
        tips = frames[:, 32:44].reshape(-1, C.NUM_FINGERTIPS, 3)
        return self.solve_batch(frames[:, : C.NUM_JOINTS], tips + np.asarray(command, dtype=np.float64)[:, 0])

    def solve_batch(self, q: np.ndarray, targets: np.ndarray, *, mask: np.ndarray | None = None) -> np.ndarray:
        """``solve`` for N hands: q (N, 16) radians, targets (N, 4, 3) metres palm frame, optional mask (N, 4) bool.

        Returns:
            (N, 16) joint targets, radians.
        """
        q = np.asarray(q, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != C.NUM_JOINTS:
            raise ValueError(f"q must have shape (N, {C.NUM_JOINTS}), got {q.shape}")
        n = len(q)
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != (n, C.NUM_FINGERTIPS, 3):
            raise ValueError(f"targets must have shape ({n}, {C.NUM_FINGERTIPS}, 3) to match q, got {targets.shape}")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (n, C.NUM_FINGERTIPS):
                raise ValueError(f"mask must have shape ({n}, {C.NUM_FINGERTIPS}) to match q, got {mask.shape}")
        out = np.empty((n, C.NUM_JOINTS))
        for i in range(n):
            try:
                out[i] = self.solve(q[i], targets[i], mask=None if mask is None else mask[i])
            except ValueError as e:
                raise ValueError(f"hand {i}: {e}") from None
        return out

"""Writes the shipped synthetic human-hand samples (``dexgen.teleop.human_hand.HUMAN_CALIBRATION`` and
``HUMAN_DEMO``): a simulated operator whose hand is larger than the robot's, tilted against the palm frame and with
its own finger spacing, tracked with 1 mm of noise.

- calibration: 8 s at 20 Hz of keypoints following a sweep of the default hand's fingertips (every joint swinging
  sinusoidally through the middle of its range at its own frequency), with ``robot_tips`` the sweep itself;
- demo: 6 s of the same operator turning an imagined object about palm z at 0.5 rad/s (its fingertips turning
  rigidly about their centroid from a closed pose).

    python scripts/make_human_hand_samples.py --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.spatial.transform import Rotation

from dexgen.sim import constants as C
from dexgen.teleop.human_hand import HUMAN_CALIBRATION, HUMAN_DEMO, NUM_LANDMARKS, TIP_LANDMARKS, save_keypoints
from dexgen.teleop.ik import FingertipIK

DT = 0.05
HAND_SCALE = 1.15
"""The person's fingertip motion per metre of the robot's (their hand is larger)."""
TILT_DEG = 20.0
"""How far the person's wrist frame is turned against the robot's palm frame, degrees."""
SPACING_MM = 8.0
"""Standard deviation of the person's per-finger offsets from the robot's layout, millimetres."""
NOISE_MM = 1.0
"""Tracker noise on every landmark, millimetres."""


def _landmarks(tips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(S, 21, 3) MediaPipe-ordered landmarks around human fingertips tips (S, 4, 3) (FINGERS order): the wrist at
    the origin, each finger's base fixed, its middle joints on the line to its tip, the little finger beside the
    ring finger."""
    s = len(tips)
    out = np.zeros((s, NUM_LANDMARKS, 3))
    for k, tip_index in enumerate(TIP_LANDMARKS):
        base = tips[:, k].mean(0) * 0.45
        for j, share in enumerate((0.0, 0.45, 0.75)):  # MCP (CMC for the thumb), PIP, DIP
            out[:, tip_index - 3 + j] = base + share * (tips[:, k] - base)
        out[:, tip_index] = tips[:, k]
    out[:, 17:21] = out[:, 13:17] + np.array([0.0, 0.02, -0.005])  # little finger, beside the ring finger
    return out + rng.normal(0.0, NOISE_MM * 1e-3, out.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    ik = FingertipIK()
    lo, hi = ik.joint_range[:, 0], ik.joint_range[:, 1]
    mid, amp = (lo + hi) / 2, 0.3 * (hi - lo)
    freq, phase = rng.uniform(0.15, 0.45, C.NUM_JOINTS), rng.uniform(0, 2 * np.pi, C.NUM_JOINTS)
    times = np.arange(0.0, 8.0 + 1e-9, DT)
    sweep = np.stack([ik.forward(mid + amp * np.sin(2 * np.pi * freq * t + phase)) for t in times])  # (S, 4, 3)

    tilt = Rotation.from_rotvec(np.deg2rad(TILT_DEG) * rng.normal(size=3) / np.sqrt(3))
    spacing = rng.normal(0.0, SPACING_MM * 1e-3, (4, 3))

    def human(robot: np.ndarray) -> np.ndarray:  # the person's fingertips, wrist frame, doing robot's motion
        return HAND_SCALE * tilt.inv().apply((robot + spacing).reshape(-1, 3)).reshape(robot.shape)

    save_keypoints(HUMAN_CALIBRATION, _landmarks(human(sweep), rng), dt=DT, robot_tips=sweep)

    closed = ik.forward(mid + 0.25 * (hi - lo) * np.sign(np.arange(C.NUM_JOINTS) % 4))  # fingers curled
    centre = closed.mean(0)
    turns = Rotation.from_rotvec(np.outer(0.5 * np.arange(0.0, 6.0 + 1e-9, DT), [0.0, 0.0, 1.0]))
    demo = np.stack([centre + r.apply(closed - centre) for r in turns])
    save_keypoints(HUMAN_DEMO, _landmarks(human(demo), rng), dt=DT)
    print(f"wrote {HUMAN_CALIBRATION} ({len(sweep)} frames) and {HUMAN_DEMO} ({len(demo)} frames)")


if __name__ == "__main__":
    main()

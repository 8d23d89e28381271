"""Forward kinematics of the Allegro Hand v4 (right) from its published URDF figures, independent of our MJCF.

Each chain is the URDF's list of joints: origin (xyz, metres; rpy, radians, fixed-axis roll-pitch-yaw) and axis,
then the fingertip frame's offset. Used only by tests, to check that ``assets/allegro_hand.xml`` moves as the real
hand does.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

_FINGER = [((0.0, 0.0, 0.0164), (0.0, 0.0, 0.0), (0, 1, 0)),
           ((0.0, 0.0, 0.054), (0.0, 0.0, 0.0), (0, 1, 0)),
           ((0.0, 0.0, 0.0384), (0.0, 0.0, 0.0), (0, 1, 0))]  # fmt: skip
CHAINS = {
    "index": [((0.0, 0.0435, -0.001542), (-0.08726646, 0.0, 0.0), (0, 0, 1)), *_FINGER],
    "middle": [((0.0, 0.0, 0.0007), (0.0, 0.0, 0.0), (0, 0, 1)), *_FINGER],
    "ring": [((0.0, -0.0435, -0.001542), (0.08726646, 0.0, 0.0), (0, 0, 1)), *_FINGER],
    "thumb": [((-0.0182, 0.019333, -0.045987), (3.14159, -1.48353, 1.5708), (-1, 0, 0)),
              ((-0.027, 0.005, 0.0399), (0.0, 0.0, 0.0), (0, 0, 1)),
              ((0.0, 0.0, 0.0177), (0.0, 0.0, 0.0), (0, 1, 0)),
              ((0.0, 0.0, 0.0514), (0.0, 0.0, 0.0), (0, 1, 0))],
}  # fmt: skip
"""Per finger, the URDF joints in order: (origin xyz, origin rpy, axis)."""
TIP = {"index": 0.0267, "middle": 0.0267, "ring": 0.0267, "thumb": 0.0423}
"""Fingertip frame offset along the last link's z, metres."""

PALM_CENTRE = np.array([-0.0093, 0.0, -0.0475])
"""Centre of the palm box in the URDF's palm frame, metres."""
TO_PALM = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
"""Rotation from the URDF's palm frame to dexgen's (x toward the fingers, z out of the palm face)."""


def fingertips(q: np.ndarray) -> np.ndarray:
    """(16,) joint positions (dexgen's order: index, middle, ring, thumb, 4 each) -> (4, 3) fingertips, metres,
    dexgen's palm frame."""
    out = []
    for f, (finger, chain) in enumerate(CHAINS.items()):
        rot, pos = np.eye(3), np.zeros(3)
        for j, (xyz, rpy, axis) in enumerate(chain):
            pos = pos + rot @ np.asarray(xyz)
            rot = rot @ Rotation.from_euler("xyz", rpy).as_matrix()
            rot = rot @ Rotation.from_rotvec(q[4 * f + j] * np.asarray(axis, float)).as_matrix()
        tip = pos + rot @ np.array([0.0, 0.0, TIP[finger]])
        out.append(TO_PALM @ (tip - PALM_CENTRE))
    return np.array(out)

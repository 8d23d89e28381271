"""Drop detection: when has the object left the hand?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dexgen.sim import constants as C


@dataclass(frozen=True)
class DropConfig:
    """Thresholds that decide the object has left the hand (both in the palm frame)."""

    max_distance: float = 0.1
    """Largest distance of the object's centre from the grasp centre, metres."""
    min_height: float = 0.0
    """Lowest height of the object's centre above the palm's mid-plane, metres (the palm surface is at 0.0204):
    below it the object has slid past the palm's edge."""


def dropped(object_pos: np.ndarray, config: DropConfig) -> np.ndarray:
    """(N,) bool: object centres (N, 3), metres, palm frame, that are out of the hand."""
    far = np.linalg.norm(object_pos - np.asarray(C.GRASP_CENTRE), axis=-1) > config.max_distance
    return far | (object_pos[:, 2] < config.min_height)

"""The controller's observation: a short history of proprioceptive frames, as the model was trained on."""

from __future__ import annotations

import numpy as np

FRAME_DIM = 44
"""Features of one frame: joint positions (16, rad), joint targets in force (16, rad), fingertips (4 x 3, metres,
palm frame), in ``dexgen.data.windows.OBS_FIELDS`` order."""


def check_frames(frames: np.ndarray, *, batch: int) -> np.ndarray:
    """``frames`` as float32 (batch, FRAME_DIM); a ValueError naming the problem (shape, NaN) otherwise."""
    f = np.asarray(frames, dtype=np.float32)
    if f.shape != (batch, FRAME_DIM):
        raise ValueError(f"observation must have shape ({batch}, {FRAME_DIM}) (or ({FRAME_DIM},) for one hand), "
                         f"got {f.shape}")  # fmt: skip
    if not np.isfinite(f).all():
        raise ValueError("observation holds NaN or inf")
    return f


class ObservationHistory:
    """The last ``history`` frames of ``batch`` hands, oldest first, (batch, history, FRAME_DIM).

    After a reset the first frame pushed fills the whole history (as the dataset's windows repeat an episode's
    first frame), so the controller can act from its first step.
    """

    def __init__(self, batch: int, history: int):
        self.batch, self.history = batch, history
        self.frames = np.zeros((batch, history, FRAME_DIM), dtype=np.float32)
        self._fresh = np.ones(batch, dtype=bool)

    def reset(self, ids: np.ndarray | None = None) -> None:
        """Forget the history of hands ``ids`` (all by default)."""
        self._fresh[slice(None) if ids is None else ids] = True

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Append one frame per hand (batch, FRAME_DIM); returns the history (batch, history, FRAME_DIM)."""
        self.frames[:, :-1] = self.frames[:, 1:]
        self.frames[:, -1] = frames
        fresh = self._fresh
        if fresh.any():
            self.frames[fresh] = frames[fresh][:, None, :]
            self._fresh[:] = False
        return self.frames

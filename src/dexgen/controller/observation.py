"""The controller's observation: a short history of proprioceptive frames, as the model was trained on."""

from __future__ import annotations

import numpy as np

FRAME_DIM = 44
"""Features of one frame: joint positions (16, rad), joint targets in force (16, rad), fingertips (4 x 3, metres,
palm frame), in ``dexgen.data.windows.OBS_FIELDS`` order."""

MAX_FRAME_VALUE = 100.0
"""Largest magnitude of any frame feature (radians or metres): joint angles stay within a turn and fingertips
within 0.3 m of the palm; anything far beyond is a unit or wiring error, and would overflow the controller's
float32 fits."""


def check_frames(frames: np.ndarray, *, batch: int) -> np.ndarray:
    """``frames`` as float32 (batch, FRAME_DIM); a ValueError naming the problem (shape, NaN, a value beyond
    ``MAX_FRAME_VALUE``) otherwise."""
    f = np.asarray(frames, dtype=np.float32)
    if f.shape != (batch, FRAME_DIM):
        raise ValueError(f"observation must have shape ({batch}, {FRAME_DIM}) (or ({FRAME_DIM},) for one hand), "
                         f"got {f.shape}")  # fmt: skip
    if not np.isfinite(f).all():
        raise ValueError("observation holds NaN or inf")
    if np.abs(f).max(initial=0.0) > MAX_FRAME_VALUE:
        raise ValueError(f"observation holds {np.abs(f).max():.3g}, beyond the {MAX_FRAME_VALUE:g} (radians or "
                         "metres) that any joint angle or palm-frame fingertip position stays within")  # fmt: skip
    return f


class ObservationHistory:
    """The last ``history`` frames of ``batch`` hands, oldest first, (batch, history, dim): ``dim`` FRAME_DIM, or
    more for a model whose frames carry more (the gravity direction appended: FRAME_DIM + 3).

    After a reset the first frame pushed fills the whole history (as the dataset's windows repeat an episode's
    first frame), so the controller can act from its first step.
    """

    def __init__(self, batch: int, history: int, *, dim: int = FRAME_DIM):
        self.batch, self.history = batch, history
        self.frames = np.zeros((batch, history, dim), dtype=np.float32)
        self._fresh = np.ones(batch, dtype=bool)

    def reset(self, ids: np.ndarray | None = None) -> None:
        """Forget the history of hands ``ids`` (all by default)."""
        self._fresh[slice(None) if ids is None else ids] = True

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Append one frame per hand (batch, dim); returns the history (batch, history, dim)."""
        self.frames[:, :-1] = self.frames[:, 1:]
        self.frames[:, -1] = frames
        fresh = self._fresh
        if fresh.any():
            self.frames[fresh] = frames[fresh][:, None, :]
            self._fresh[:] = False
        return self.frames

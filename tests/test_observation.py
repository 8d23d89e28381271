import numpy as np
import pytest

from dexgen.controller.observation import FRAME_DIM, ObservationHistory, check_frames


def test_first_frame_fills_the_history_then_it_shifts():
    h = ObservationHistory(batch=2, history=3)
    first = np.ones((2, FRAME_DIM), dtype=np.float32)
    assert (h.push(first) == 1).all()
    out = h.push(2 * first)
    assert (out[:, :2] == 1).all() and (out[:, 2] == 2).all()


def test_reset_of_one_hand_refills_only_it():
    h = ObservationHistory(batch=2, history=2)
    h.push(np.zeros((2, FRAME_DIM), dtype=np.float32))
    h.reset(np.array([1]))
    out = h.push(np.full((2, FRAME_DIM), 5.0, dtype=np.float32))
    assert (out[0, 0] == 0).all() and (out[1] == 5).all()


def test_bad_frames_are_refused():
    with pytest.raises(ValueError, match=r"shape \(1, 44\)"):
        check_frames(np.zeros((1, 40)), batch=1)
    bad = np.zeros((1, FRAME_DIM))
    bad[0, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        check_frames(bad, batch=1)

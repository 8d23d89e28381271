"""The shipped palm-down model with the shipped guided method gives the joint targets it gave before the gravity and
intent inputs reached the controller: a model without those inputs acts exactly as before (reference targets in
``tests/data/shipped_method_targets.npy``, written by ``_targets`` on the code before those inputs existed)."""

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np

from dexgen.controller.dexgen_controller import DexGenController, shipped_method
from dexgen.model.checkpoint import load_model, shipped_model_path
from model_helpers import SAMPLE_DATASET

REFERENCE = Path(__file__).parent / "data" / "shipped_method_targets.npy"
STARTS = (100, 2000, 5000)
"""Steps of the sample dataset where the three hands' episodes of observation frames start."""
STEPS = 6


def _targets() -> np.ndarray:
    """(STEPS, 3, 16) joint targets, rad: three hands driven by frames of the sample dataset with three commands
    (the frames' own future fingertip motion, a rigid turn of the fingertips about palm z, zero for the last hand's
    first half), the shipped method at seed 5, replanning every step."""
    model = load_model(shipped_model_path("palm_down"))
    ctrl = DexGenController(model, config=replace(shipped_method(model), seed=5), batch=3)
    t_h = model.cfg.horizon
    with h5py.File(SAMPLE_DATASET) as f:
        s = f["steps"]
        q, tgt, tips = (np.asarray(s[k]) for k in ("joint_pos", "joint_target", "fingertip_pos"))
    out = []
    for i in range(STEPS):
        rows = [a + i for a in STARTS]
        frames = np.concatenate([q[rows], tgt[rows], tips[rows].reshape(3, 12)], axis=1)
        cmd = np.stack([tips[r + 1 : r + 1 + t_h] - tips[r] for r in rows])  # (3, T, 4, 3)
        now = tips[rows[1]]
        centre = now.mean(axis=0)
        for k in range(t_h):  # hand 2: a rigid turn about palm z at 0.5 rad/s
            a = 0.5 * 0.05 * (k + 1)
            rot = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
            cmd[1, k] = (now - centre) @ rot.T + centre - now
        if i < STEPS // 2:
            cmd[2] = 0.0
        out.append(ctrl.act(frames, cmd))
    return np.stack(out)


def test_the_shipped_model_and_method_act_as_before():
    np.testing.assert_allclose(_targets(), np.load(REFERENCE), rtol=0, atol=1e-6)

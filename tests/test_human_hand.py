import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from dexgen.controller.guidance import rigid_twist
from dexgen.teleop.commands import DT
from dexgen.teleop.human_hand import (
    HUMAN_CALIBRATION,
    HUMAN_DEMO,
    TIP_LANDMARKS,
    HumanHandSource,
    Retarget,
    fit_retarget,
    load_keypoints,
    save_keypoints,
)


def _hand(robot_tips: np.ndarray, *, scale: float, tilt: Rotation, spacing: np.ndarray, noise_mm: float,
          rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Keypoints (S, 21, 3) of a person whose fingertips do ``robot_tips`` (S, 4, 3) with a hand ``scale`` times
    larger, turned by ``tilt``, its fingers offset by ``spacing`` (4, 3); the other landmarks anywhere."""
    human = scale * tilt.inv().apply((robot_tips + spacing).reshape(-1, 3)).reshape(robot_tips.shape)
    kp = rng.normal(0.0, 0.03, (len(robot_tips), 21, 3))
    kp[:, TIP_LANDMARKS] = human
    return kp + rng.normal(0.0, noise_mm * 1e-3, kp.shape)


def _motion(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(frames, 4, 3) smooth fingertip motion around a hand-sized layout, metres."""
    t = np.arange(frames)[:, None, None] * DT
    base = np.array([[0.09, -0.03, 0.05], [0.1, 0.0, 0.05], [0.09, 0.03, 0.05], [0.03, -0.05, 0.06]])
    return base + 0.02 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6, (1, 4, 3)) * t + rng.uniform(0, 6, (1, 4, 3)))


def test_a_scaled_rotated_hand_reproduces_a_known_fingertip_motion_within_2_mm():
    rng = np.random.default_rng(0)
    calib = _motion(rng, 160)
    person = dict(scale=1.25, tilt=Rotation.from_rotvec([0.3, -0.2, 0.4]), spacing=rng.normal(0, 0.01, (4, 3)),
                  noise_mm=1.0, rng=rng)  # fmt: skip
    fit = fit_retarget(_hand(calib, **person), calib)
    assert fit.scale == pytest.approx(1 / 1.25, rel=0.02)
    assert fit.residual_mm < 2.0
    known = _motion(np.random.default_rng(5), 100)  # another motion than the calibration's
    err = np.linalg.norm(fit.apply(_hand(known, **{**person, "noise_mm": 0.0})) - known, axis=-1)
    assert err.max() < 2e-3  # the map fitted on noisy keypoints: every fingertip of every frame within 2 mm
    noisy = np.linalg.norm(fit.apply(_hand(known, **person)) - known, axis=-1)
    assert np.sqrt(np.mean(noisy**2)) < 2e-3  # and with the tracker's 1 mm noise, 2 mm rms


def test_the_shipped_samples_turn_about_palm_z_through_the_retargeting():
    kp, dt, robot = load_keypoints(HUMAN_CALIBRATION)
    fit = fit_retarget(kp, robot)
    assert fit.residual_mm < 2.0
    robot_tips = np.tile([[0.09, -0.03, 0.05], [0.1, 0.0, 0.05], [0.09, 0.03, 0.05], [0.03, -0.05, 0.06]], (2, 1, 1))
    src = HumanHandSource(fit, HUMAN_DEMO)
    src.reset(robot_tips)
    rates = []
    for t in range(40):
        cmd = src.command(t, robot_tips)
        own = src.command_tips()
        assert cmd.shape == (2, 8, 4, 3) and own.shape == (2, 4, 3)
        rates.append(rigid_twist(torch.tensor(cmd), torch.tensor(own), dt=DT).numpy()[:, :3])
    rates = np.array(rates)
    assert np.median(rates[..., 2]) == pytest.approx(0.5, abs=0.05)  # the demo turns at 0.5 rad/s about z
    assert np.abs(np.median(rates[..., :2], axis=(0, 1))).max() < 0.05


def test_live_keypoints_continue_the_recent_fingertip_velocity():
    rng = np.random.default_rng(1)
    fit = Retarget(1.0, np.eye(3), np.zeros((4, 3)), 0.0)
    src = HumanHandSource(fit, velocity_window_s=0.1)
    tips = np.zeros((3, 4, 3)) + 0.05
    src.reset(tips)
    with pytest.raises(RuntimeError, match="before any keypoints"):
        src.command(0, tips)
    kp = rng.normal(0.0, 0.03, (21, 3))
    velocity = np.array([0.01, -0.02, 0.005])  # m/s, every fingertip
    for t in range(5):
        frame = kp.copy()
        frame[list(TIP_LANDMARKS)] += velocity * t * DT
        src.feed(frame)
        cmd = src.command(t, tips)
    want = DT * np.arange(1, 9)[:, None, None] * velocity  # (T, 1, 3)
    np.testing.assert_allclose(cmd, np.broadcast_to(want, cmd.shape), atol=1e-12)
    np.testing.assert_allclose(src.command_tips()[0], kp[list(TIP_LANDMARKS)] + velocity * 4 * DT)


def test_bad_keypoints_and_calibrations_are_named(tmp_path):
    fit = Retarget(1.0, np.eye(3), np.zeros((4, 3)), 0.0)
    with pytest.raises(ValueError, match="21 landmarks of 3 coordinates"):
        fit.apply(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        fit.apply(np.full((21, 3), np.nan))
    with pytest.raises(ValueError, match="give metres"):
        fit.apply(np.full((21, 3), 80.0))  # millimetres
    still = np.tile(np.random.default_rng(0).normal(0, 0.03, (21, 3)), (50, 1, 1))
    with pytest.raises(ValueError, match="too little"):
        fit_retarget(still, still[:, TIP_LANDMARKS])
    with pytest.raises(ValueError, match="same S"):
        fit_retarget(still, still[:10, TIP_LANDMARKS])
    with pytest.raises(ValueError, match="no keypoint file"):
        load_keypoints(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", tips=np.zeros((3, 4, 3)))
    with pytest.raises(ValueError, match="no 'keypoints' array"):
        load_keypoints(tmp_path / "other.npz")
    path = save_keypoints(tmp_path / "k.npz", still, dt=0.1)
    kp, dt, robot = load_keypoints(path)
    assert dt == 0.1 and robot is None and np.array_equal(kp, still)
    live = HumanHandSource(fit)
    with pytest.raises(RuntimeError, match="feed before reset"):
        live.feed(np.zeros((21, 3)))
    live.reset(np.zeros((1, 4, 3)))
    with pytest.raises(ValueError, match="21 landmarks"):
        live.feed(np.zeros((1, 4, 3)))

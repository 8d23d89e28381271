import os

import numpy as np
import pytest

from dexgen.sim import constants as C
from dexgen.teleop.commands import (
    PRESETS,
    CorruptedExpert,
    CorruptionConfig,
    KinematicIntent,
    Recording,
    ReplayCommand,
    corruption,
    episode_ends,
    load_recording,
    make_source,
    parse_axis,
    relative_window,
    save_recording,
)

T = 8
DT = 0.05


def _tips(n=3, seed=0):
    """(n, 4, 3) plausible fingertip positions around the grasp centre, metres."""
    rng = np.random.default_rng(seed)
    return np.array(C.GRASP_CENTRE) + rng.normal(0.0, 0.03, (n, 4, 3))


def _ref(steps=30, n=3, seed=1):
    """(steps + 1, n, 4, 3) a smooth random fingertip trajectory, metres."""
    rng = np.random.default_rng(seed)
    return _tips(n, seed) + np.cumsum(rng.normal(0.0, 0.002, (steps + 1, n, 4, 3)), axis=0)


def _clean(ref, t, end=None):
    """ref[t+1..t+T] - ref[t] per hand, indices clamped to [0, end], written out with loops."""
    s, n = ref.shape[:2]
    end = np.full(n, s - 1) if end is None else end
    out = np.empty((n, T, 4, 3))
    for h in range(n):
        base = ref[min(max(t, 0), end[h]), h]
        for i in range(1, T + 1):
            out[h, i - 1] = ref[min(max(t + i, 0), end[h]), h] - base
    return out


def _pairwise(x):
    """(..., 4, 4) distances between the fingertips of x (..., 4, 3)."""
    return np.linalg.norm(x[..., :, None, :] - x[..., None, :, :], axis=-1)


# --- kinematic intent ---------------------------------------------------------------------------------------------


def test_kinematic_intent_is_rigid_and_turns_by_omega_dt_i_about_the_axis():
    tips = _tips()
    axis = np.array([1.0, 2.0, 2.0]) / 3.0
    src = KinematicIntent(axis * 5.0, omega=1.3)  # any length: normalised
    src.reset(tips, rng=0)
    dx = src.command(0, tips)
    assert dx.shape == (3, T, 4, 3) and dx.dtype == np.float64
    moved = tips[:, None] + dx
    np.testing.assert_allclose(_pairwise(moved), np.broadcast_to(_pairwise(tips)[:, None], (3, T, 4, 4)), atol=1e-12)
    centre = tips.mean(axis=1)  # default centre: the mean of the current fingertips
    for h in range(3):
        r0 = tips[h, 0] - centre[h]
        r0p = r0 - axis * (r0 @ axis)  # component perpendicular to the axis
        for i in range(1, T + 1):
            r = moved[h, i - 1, 0] - centre[h]
            rp = r - axis * (r @ axis)
            angle = np.arctan2(np.cross(r0p, rp) @ axis, r0p @ rp)
            assert angle == pytest.approx(1.3 * DT * i, abs=1e-9)
            assert r @ axis == pytest.approx(r0 @ axis, abs=1e-12)  # no motion along the axis


def test_kinematic_intent_zero_omega_gives_zeros_and_flipping_the_axis_flips_the_direction():
    tips = _tips()
    assert not KinematicIntent("+z", omega=0.0).command(0, tips).any()
    up, down = KinematicIntent("+z", omega=2.0).command(0, tips), KinematicIntent("-z", omega=2.0).command(0, tips)
    np.testing.assert_allclose(down, KinematicIntent("+z", omega=-2.0).command(0, tips), atol=1e-15)
    rel = tips - tips.mean(axis=1, keepdims=True)
    tangent = np.cross([0.0, 0.0, 1.0], rel)  # direction of a positive turn about +z
    assert (np.sum(up[:, 0] * tangent, axis=-1) > 0).all()
    assert (np.sum(down[:, 0] * tangent, axis=-1) < 0).all()
    assert not up[..., 2].any()  # a turn about z keeps the heights


def test_kinematic_intent_named_axes_centres_and_translation():
    np.testing.assert_array_equal(parse_axis("-x"), [-1.0, 0.0, 0.0])
    np.testing.assert_array_equal(parse_axis("Y"), [0.0, 1.0, 0.0])
    for bad in ("+w", "++z", (0.0, 0.0, 0.0), (1.0, 2.0)):
        with pytest.raises(ValueError, match="axis"):
            parse_axis(bad)
    tips = _tips()
    np.testing.assert_allclose(KinematicIntent("+y").command(0, tips), KinematicIntent((0, 3, 0)).command(0, tips))
    # the nominal centre: the fingertips turn about constants.GRASP_CENTRE, so their distance to it is kept
    nominal = KinematicIntent("+x", omega=1.0, centre="nominal").command(0, tips)
    dist = np.linalg.norm(tips[:, None] + nominal - np.array(C.GRASP_CENTRE), axis=-1)
    before = np.linalg.norm(tips - np.array(C.GRASP_CENTRE), axis=-1)
    np.testing.assert_allclose(dist, np.broadcast_to(before[:, None], dist.shape))
    # per-hand axes (N, 3): each hand turns about its own axis
    axes = np.array([[0, 0, 1.0], [0, 0, -1.0], [1.0, 0, 0]])
    per_hand = KinematicIntent(axes, omega=1.0).command(0, tips)
    for h, name in enumerate(("+z", "-z", "+x")):
        np.testing.assert_allclose(per_hand[h], KinematicIntent(name).command(0, tips[h : h + 1])[0], atol=1e-15)
    # translation only: every fingertip moves by v * dt * i
    v = np.array([0.01, -0.02, 0.0])
    moved = KinematicIntent(omega=0.0, velocity=v, horizon=5).command(3, tips)
    expected = v * DT * np.arange(1, 6)[:, None]
    np.testing.assert_allclose(moved, np.broadcast_to(expected[None, :, None], (3, 5, 4, 3)), atol=1e-15)
    with pytest.raises(ValueError, match="centre"):
        KinematicIntent(centre="palm")
    with pytest.raises(ValueError, match="shape"):
        KinematicIntent().command(0, np.zeros((2, 5, 3)))


# --- corrupted expert ---------------------------------------------------------------------------------------------


def test_clean_corrupted_expert_is_the_experts_relative_motion_clamped_at_episode_ends():
    ref = _ref()
    end = np.array([30, 12, 5])
    src = CorruptedExpert(ref, end)
    src.reset(ref[0], rng=3)
    for t in (0, 4, 10, 22, 29, 35):
        np.testing.assert_array_equal(src.command(t, ref[min(t, 30)]), _clean(ref, t, end))
    # rows after a hand's end belong to another episode: changing them changes nothing
    other = ref.copy()
    other[13:, 1] += 1.0
    other[6:, 2] -= 1.0
    changed = CorruptedExpert(other, end)
    for t in range(0, 30, 3):
        np.testing.assert_array_equal(changed.command(t), src.command(t))
    # after the end the expert holds still; just before it, the late steps stop moving
    assert not src.command(5)[2].any() and not src.command(20)[1].any()
    late = src.command(8)[1]  # end 12: steps i >= 4 reach the end row
    np.testing.assert_array_equal(late[3:], np.broadcast_to(late[3], late[3:].shape))
    # one hand (S, 4, 3) and default ends
    np.testing.assert_array_equal(CorruptedExpert(ref[:, 0]).command(2), _clean(ref[:, :1], 2))
    np.testing.assert_array_equal(episode_ends(np.array([0, 1, 17])), [0, 0, 16])


def test_noise_has_the_configured_std_and_zero_mean():
    ref = _ref(n=4)
    src = CorruptedExpert(ref, config=CorruptionConfig(noise_std=0.004))
    src.reset(ref[0], rng=0)
    err = np.stack([src.command(t) - src.clean(t) for t in range(25)])
    assert err.std() == pytest.approx(0.004, rel=0.05)
    assert abs(err.mean()) < 2e-4
    assert not np.allclose(src.command(3), src.command(3))  # fresh noise every call


def test_lag_is_the_clean_command_of_an_earlier_step():
    ref = _ref()
    src = CorruptedExpert(ref, config=corruption("lagged"))
    lag = PRESETS["lagged"].lag_steps
    assert lag > 0
    for t in range(lag, 25):
        np.testing.assert_array_equal(src.command(t), src.clean(t - lag))
    # before the reference starts the expert holds still
    first = src.command(0)
    assert not first[:, :lag].any()
    np.testing.assert_array_equal(first[:, lag:], _clean(ref, 0)[:, : T - lag])


def test_scale_multiplies_and_frozen_finger_stays_still():
    ref = _ref()
    scaled = CorruptedExpert(ref, config=CorruptionConfig(scale=1.5))
    np.testing.assert_allclose(scaled.command(7), 1.5 * scaled.clean(7), rtol=1e-15)
    frozen = CorruptedExpert(ref, config="frozen_thumb")
    thumb = C.FINGERS.index("thumb")
    assert frozen.config.frozen_finger == thumb == CorruptionConfig(frozen_finger="thumb").frozen_finger
    dx = frozen.command(7)
    assert not dx[:, :, thumb].any() and dx[:, :, :thumb].any()
    np.testing.assert_array_equal(dx[:, :, :thumb], frozen.clean(7)[:, :, :thumb])
    # the frozen finger is zeroed after the noise too
    both = CorruptedExpert(ref, config=CorruptionConfig(frozen_finger=0, noise_std=0.01))
    assert not both.command(3)[:, :, 0].any()


def test_time_jitter_stays_within_plus_minus_j_shifted_clean_commands():
    ref = _ref(n=5)
    j = 2
    src = CorruptedExpert(ref, config=CorruptionConfig(time_jitter_steps=j))
    src.reset(ref[0], rng=11)
    seen = set()
    for t in range(0, 28):
        dx = src.command(t)
        for h in range(5):
            shifts = [k for k in range(-j, j + 1) if np.array_equal(dx[h], _clean(ref, t + k)[h])]
            assert shifts, f"hand {h} at step {t} is no shifted clean command"
            seen.update(shifts)
    assert seen == set(range(-j, j + 1))


def test_bias_is_a_constant_per_hand_drift_growing_with_the_step():
    ref = _ref(n=400, steps=12)
    src = CorruptedExpert(ref, config=CorruptionConfig(bias=0.001))
    src.reset(ref[0], rng=5)
    steps = np.arange(1, T + 1)[None, :, None, None]
    drift = (src.command(2) - src.clean(2)) / steps  # (N, T, 4, 3): the same b for every step and finger
    np.testing.assert_allclose(drift, np.broadcast_to(drift[:, :1, :1], drift.shape), atol=1e-15)
    b = drift[:, 0, 0]
    np.testing.assert_allclose((src.command(9) - src.clean(9)) / steps, drift, atol=1e-15)  # constant in time
    assert b.std() == pytest.approx(0.001, rel=0.1)
    src.reset(ref[0], rng=6)  # a new episode draws a new drift
    assert not np.allclose((src.command(2) - src.clean(2))[:, 0, 0], b)


def test_same_seed_same_commands_and_presets_are_valid():
    ref = _ref()
    cfg = PRESETS["mixed"]

    def run(seed):
        src = CorruptedExpert(ref, config=cfg)
        src.reset(ref[0], rng=np.random.default_rng(seed))
        return np.stack([src.command(t, ref[t]) for t in range(20)])

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))
    assert PRESETS["clean"].is_clean and PRESETS["clean"].describe() == "clean"
    for name, preset in PRESETS.items():
        assert name == "clean" or not preset.is_clean
        assert CorruptedExpert(ref, config=name).name == f"corrupted:{name}"
    assert corruption("noisy", lag_steps=1) == CorruptionConfig(noise_std=PRESETS["noisy"].noise_std, lag_steps=1)
    assert "lag_steps=1" in corruption("noisy", lag_steps=1).describe()
    with pytest.raises(ValueError, match="unknown corruption preset"):
        corruption("awful")
    for bad in ({"noise_std": -1.0}, {"lag_steps": 1.5}, {"frozen_finger": 4}, {"frozen_finger": "pinky"}):
        with pytest.raises(ValueError):
            CorruptionConfig(**bad)
    with pytest.raises(ValueError, match="end"):
        CorruptedExpert(ref, np.array([1, 2]))
    with pytest.raises(ValueError, match="hands"):
        CorruptedExpert(ref).reset(_tips(2))


def test_relative_window_clamps_each_index():
    ref = np.arange(6, dtype=float)[:, None, None, None] * np.ones((6, 1, 4, 3))
    win = relative_window(ref, np.array([-2]), np.array([4]), 4)[0, :, 0, 0]
    np.testing.assert_array_equal(win, [0.0, 0.0, 1.0, 2.0])
    win = relative_window(ref, np.array([2]), np.array([4]), 4)[0, :, 0, 0]
    np.testing.assert_array_equal(win, [1.0, 2.0, 2.0, 2.0])


# --- replay -------------------------------------------------------------------------------------------------------


def test_replay_round_trip_and_clamping(tmp_path):
    tips = _ref(steps=15, n=1)[:, 0]  # (16, 4, 3)
    path = save_recording(tmp_path / "rec.npz", tips)
    assert os.listdir(tmp_path) == ["rec.npz"]  # no temporary file left
    rec = load_recording(path)
    assert isinstance(rec, Recording) and rec.dt == DT
    np.testing.assert_array_equal(rec.tips, tips)
    src = ReplayCommand(path)
    now = _tips(2)
    src.reset(now, rng=0)  # a one-hand recording is replayed to every hand
    for t in (0, 3, 10, 15, 40):
        expected = _clean(tips[:, None], t)[0]
        dx = src.command(t, now)
        assert dx.shape == (2, T, 4, 3)
        np.testing.assert_array_equal(dx[0], expected)
        np.testing.assert_array_equal(dx[1], expected)
    assert not src.command(15, now).any()  # the recording ended: hold still
    # several hands (S, N, 4, 3) and a dt
    many = _ref(steps=9, n=3)
    save_recording(tmp_path / "many.npz", many, dt=0.1)
    rec = load_recording(tmp_path / "many.npz")
    assert rec.dt == 0.1 and rec.tips.shape == (10, 3, 4, 3)
    with pytest.raises(ValueError, match="3 hands"):
        ReplayCommand(rec, dt=0.1).reset(_tips(2))


def test_replay_resamples_another_rate_to_the_control_period():
    v = np.array([0.01, 0.0, -0.01])  # m/s
    fine = _tips(1)[0] + v * (0.025 * np.arange(41))[:, None, None]  # 1 s at 40 Hz
    src = ReplayCommand(Recording(fine, 0.025))
    src.reset(_tips(1))
    np.testing.assert_allclose(src.command(0, _tips(1))[0, :, 0], v * DT * np.arange(1, T + 1)[:, None], atol=1e-12)
    assert src.tips.shape[0] == 21
    assert make_source("replay", recording=fine).tips.shape[0] == 41


def test_recording_errors_are_one_line_value_errors(tmp_path):
    def fails(path, match):
        with pytest.raises(ValueError, match=match) as info:
            load_recording(path)
        assert "\n" not in str(info.value)

    fails(tmp_path / "absent.npz", "no such file")
    np.savez(tmp_path / "keys.npz", q=np.zeros((3, 16)))
    fails(tmp_path / "keys.npz", "no 'tips' array .found: q")
    np.savez(tmp_path / "shape.npz", tips=np.zeros((5, 3, 3)))
    fails(tmp_path / "shape.npz", r"shape \(S, 4, 3\)")
    bad = np.zeros((5, 4, 3))
    bad[2, 1, 0] = np.nan
    np.savez(tmp_path / "nan.npz", tips=bad)
    fails(tmp_path / "nan.npz", "NaN")
    np.savez(tmp_path / "dt.npz", tips=np.zeros((5, 4, 3)), dt=np.array(-1.0))
    fails(tmp_path / "dt.npz", "dt must be")
    (tmp_path / "text.npz").write_text("not numpy")
    fails(tmp_path / "text.npz", "not a readable .npz")
    np.save(tmp_path / "single.npy", np.zeros((5, 4, 3)))
    fails(tmp_path / "single.npy", "not an .npz archive")
    with pytest.raises(ValueError, match="NaN"):
        save_recording(tmp_path / "out.npz", bad)
    assert not (tmp_path / "out.npz").exists()


def test_make_source_by_name():
    ref = _ref()
    assert isinstance(make_source("kinematic", axis="-y", omega=0.5), KinematicIntent)
    src = make_source("corrupted:noisy", ref=ref)
    assert isinstance(src, CorruptedExpert) and src.config == PRESETS["noisy"] and src.name == "corrupted:noisy"
    with pytest.raises(ValueError, match="unknown command source"):
        make_source("keyboard")


def test_a_recording_too_long_to_resample_or_in_millimetres_is_refused(tmp_path):
    tips = np.full((3, 4, 3), 0.05)
    np.savez(tmp_path / "huge_dt.npz", tips=tips, dt=np.array(1e6))  # resampled at 20 Hz: 4e7 samples (GBs)
    with pytest.raises(ValueError, match=r"huge_dt.npz: lasts 2e\+06 s .* longer than the 3600 s"):
        load_recording(tmp_path / "huge_dt.npz")
    with pytest.raises(ValueError, match="longer than the 3600 s"):
        ReplayCommand(tips, dt=1e6)
    np.savez(tmp_path / "mm.npz", tips=np.array([[[50, 20, 30]] * 4] * 5))  # integer millimetres
    with pytest.raises(ValueError, match=r"mm.npz: tips reach 50 from the palm, beyond 0.5 m: .*millimetres"):
        load_recording(tmp_path / "mm.npz")

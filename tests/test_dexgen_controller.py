import numpy as np
import pytest
import torch

from dexgen.controller.dexgen_controller import ControllerConfig, DexGenController
from dexgen.sim.hand import joint_range
from model_helpers import tiny_model

LIMITS = joint_range()


def _frame(batch=1, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.uniform(LIMITS[:, 0], LIMITS[:, 1], (batch, 16))
    tips = rng.normal(0.0, 0.03, (batch, 12)) + 0.05
    return np.concatenate((q, q, tips), axis=1).astype(np.float32)


def test_act_returns_targets_within_limits_for_one_hand_and_a_batch():
    ctrl = DexGenController(tiny_model())
    out = ctrl.act(_frame()[0])
    assert out.shape == (16,)
    assert (out >= LIMITS[:, 0] - 1e-6).all() and (out <= LIMITS[:, 1] + 1e-6).all()
    batch = DexGenController(tiny_model(), batch=3)
    assert batch.act(_frame(3)).shape == (3, 16)
    assert len(batch.latencies_s) == 1 and batch.latencies_s[0] > 0


def test_same_seed_same_targets_after_reset():
    ctrl = DexGenController(tiny_model(), config=ControllerConfig(seed=4))
    frames = [_frame(seed=i)[0] for i in range(3)]
    first = [ctrl.act(f) for f in frames]
    ctrl.reset()
    again = [ctrl.act(f) for f in frames]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_command_of_wrong_shape_or_with_nan_is_refused():
    model = tiny_model()
    ctrl = DexGenController(model, config=ControllerConfig(alpha=0.1))
    with pytest.raises(ValueError, match=r"command must have shape \(1, 8, 4, 3\)"):
        ctrl.act(_frame()[0], np.zeros((5, 4, 3)))
    cmd = np.zeros((model.cfg.horizon, 4, 3))
    cmd[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="command holds NaN"):
        ctrl.act(_frame()[0], cmd)
    with pytest.raises(ValueError, match="observation must have shape"):
        ctrl.act(np.zeros(12))


def test_a_command_gain_is_the_same_as_a_scaled_command():
    model = tiny_model()
    cmd = 0.01 * np.random.default_rng(0).normal(size=(model.cfg.horizon, 4, 3))
    cfg = ControllerConfig(alpha=0.4, seed=3)
    scaled = DexGenController(model, config=cfg).act(_frame()[0], 1.5 * cmd)
    gained = DexGenController(model, config=ControllerConfig(alpha=0.4, seed=3, command_gain=1.5)).act(_frame()[0], cmd)
    plain = DexGenController(model, config=cfg).act(_frame()[0], cmd)
    np.testing.assert_allclose(gained, scaled, atol=1e-6)
    assert not np.allclose(gained, plain, atol=1e-4)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="command_gain must be finite and > 0"):
            DexGenController(model, config=ControllerConfig(command_gain=bad))


def test_translation_weight_scales_the_fingertips_common_translation_only():
    model = tiny_model()
    rng = np.random.default_rng(1)
    relative = 0.01 * rng.normal(size=(model.cfg.horizon, 4, 3))
    relative -= relative.mean(axis=1, keepdims=True)  # no common translation
    drift = 0.004 * np.arange(1, model.cfg.horizon + 1)[:, None, None] * np.array([1.0, -0.5, 0.2])
    cfg = ControllerConfig(alpha=0.4, seed=3)

    def act(config, cmd):
        return DexGenController(model, config=config).act(_frame()[0], cmd)

    removed = act(ControllerConfig(alpha=0.4, seed=3, translation_weight=0.0), relative + drift)
    np.testing.assert_allclose(removed, act(cfg, relative), atol=1e-6)  # the drift is gone, the rest kept
    halved = act(ControllerConfig(alpha=0.4, seed=3, translation_weight=0.5), relative + drift)
    np.testing.assert_allclose(halved, act(cfg, relative + 0.5 * drift), atol=1e-6)
    assert not np.allclose(act(cfg, relative + drift), removed, atol=1e-4)  # 1 keeps it
    for bad in (-0.1, float("inf")):
        with pytest.raises(ValueError, match="translation_weight must be finite and >= 0"):
            DexGenController(model, config=ControllerConfig(translation_weight=bad))


def test_guidance_changes_the_output_only_with_alpha():
    model = tiny_model()
    cmd = 0.03 * np.ones((model.cfg.horizon, 4, 3))
    outs = {}
    for alpha in (0.0, 0.4):
        ctrl = DexGenController(model, config=ControllerConfig(alpha=alpha))
        outs[alpha] = (ctrl.act(_frame()[0], cmd), DexGenController(model).act(_frame()[0]))
    np.testing.assert_allclose(outs[0.0][0], outs[0.0][1], atol=1e-6)
    assert not np.allclose(outs[0.4][0], outs[0.4][1])


def test_non_finite_output_holds_the_last_safe_targets():
    model = tiny_model()
    ctrl = DexGenController(model)
    frame = _frame()[0]
    safe = ctrl.act(frame)
    with torch.no_grad():
        model.idm.net[-1].bias.fill_(float("nan"))
    held = ctrl.act(frame)
    np.testing.assert_array_equal(held, safe)
    assert ctrl.rejected == 1


def test_chunking_samples_once_per_chunk():
    model = tiny_model()
    calls = []
    original = model.sample

    def counting(*a, **k):
        calls.append(1)
        return original(*a, **k)

    model.sample = counting
    ctrl = DexGenController(model, config=ControllerConfig(replan_every=3))
    for i in range(7):
        ctrl.act(_frame(seed=i)[0])
    assert len(calls) == 3  # steps 0, 3 and 6
    assert ctrl.decisions == 3
    with pytest.raises(ValueError, match="past the plan's horizon"):
        DexGenController(model, config=ControllerConfig(replan_every=8))


def test_mode_input_reaches_a_model_trained_with_one():
    model = tiny_model(mode="primitive")
    for p in model.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.2)
    with pytest.raises(ValueError, match="mode input"):
        DexGenController(model).act(_frame()[0])
    a = DexGenController(model, config=ControllerConfig(mode=4)).act(_frame()[0])
    b = DexGenController(model, config=ControllerConfig(mode=5)).act(_frame()[0])
    assert not np.allclose(a, b)


def test_best_of_candidates_follows_the_plan_closest_to_the_intended_rotation():
    import torch

    from dexgen.controller.guidance import command_rotation

    model = tiny_model()
    frames = _frame(16, seed=3)
    cmd = np.zeros((16, model.cfg.horizon, 4, 3))
    cmd[..., 1] = 0.003 * np.arange(1, model.cfg.horizon + 1)[:, None] * np.array([1.0, 1.0, -1.0, -1.0])
    misses = {}
    for k in (1, 8):
        ctrl = DexGenController(model, config=ControllerConfig(candidates=k, alpha=0.1, intent="rigid"), batch=16)
        out = ctrl.act(frames, cmd)
        assert out.shape == (16, 16) and np.isfinite(out).all()
        obs = torch.from_numpy(ctrl.history.frames.copy())  # the history the plan was sampled for
        tips = torch.from_numpy(frames[:, 32:44].reshape(16, 4, 3))
        dx = ctrl._plan - tips[:, None]
        with torch.no_grad():
            want = command_rotation(torch.from_numpy(cmd).float(), tips)
            misses[k] = float((model.predict_rotation(obs, dx) - want).pow(2).sum(1).mean())
    assert misses[8] < misses[1]
    with pytest.raises(ValueError, match="intent"):
        DexGenController(model, config=ControllerConfig(candidates=4, intent="psychic"))
    with pytest.raises(ValueError, match="rigid_fraction"):
        DexGenController(model, config=ControllerConfig(candidates=4, rigid_fraction=1.5))
    with pytest.raises(ValueError, match="candidates"):
        DexGenController(model, config=ControllerConfig(candidates=0))
    with pytest.raises(ValueError, match="rotation predictor"):
        DexGenController(tiny_model(rotation_hidden=0), config=ControllerConfig(candidates=4))


def test_best_of_candidates_with_the_predicted_intent_follows_the_plan_closest_to_the_commands_reading():
    import torch

    model = tiny_model()
    frames = _frame(16, seed=4)
    cmd = np.zeros((16, model.cfg.horizon, 4, 3))
    cmd[..., 0, 0] = 0.004 * np.arange(1, model.cfg.horizon + 1)  # one finger sweeping: not a rigid turn
    misses = {}
    for k in (1, 8):
        ctrl = DexGenController(model, config=ControllerConfig(candidates=k, alpha=0.1, intent="predicted"), batch=16)
        ctrl.act(frames, cmd)
        obs = torch.from_numpy(ctrl.history.frames.copy())
        tips = torch.from_numpy(frames[:, 32:44].reshape(16, 4, 3))
        with torch.no_grad():
            want = model.predict_rotation(obs, torch.from_numpy(cmd).float())
            misses[k] = float((model.predict_rotation(obs, ctrl._plan - tips[:, None]) - want).pow(2).sum(1).mean())
    assert misses[8] < misses[1]


def test_mode_from_intent_picks_the_primitive_a_rigid_turn_means():
    from dexgen.data.schema import PRIMITIVES
    from dexgen.teleop.commands import KinematicIntent

    model = tiny_model(mode="primitive", mode_dropout=0.1)
    for p in model.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.2)
    with pytest.raises(ValueError, match="mode dropout"):
        DexGenController(tiny_model(mode="primitive"), config=ControllerConfig(mode_from_intent=True))
    with pytest.raises(ValueError, match="intent_modes"):
        DexGenController(model, config=ControllerConfig(intent_modes=("grasp_to_grasp",)))
    cfg = ControllerConfig(alpha=0.3, mode_from_intent=True, intent="rigid")
    ctrl = DexGenController(model, config=cfg, batch=4)
    frames = _frame(4)
    tips = frames[:, 32:44].reshape(4, 4, 3).astype(np.float64)
    hist = torch.from_numpy(np.repeat(frames[:, None], model.cfg.history, axis=1))
    asks = (("+z", 0.5), ("-z", 0.5), ("+z", 0.02), ("+x", 0.5))
    cmds = np.stack([KinematicIntent(axis, omega, horizon=model.cfg.horizon).command(0, tips[i : i + 1])[0]
                     for i, (axis, omega) in enumerate(asks)])  # fmt: skip
    modes = ctrl._modes(ctrl._intent(hist, torch.from_numpy(cmds.astype(np.float32))))
    # +z; -z; too slow; about an axis no listed primitive turns along: the unknown mode
    assert modes.tolist() == [PRIMITIVES.index("rotate+z"), PRIMITIVES.index("rotate-z"), -1, -1]
    assert ctrl._modes(None) is None  # no command: the unknown mode
    low = DexGenController(model, config=ControllerConfig(alpha=0.3, mode_from_intent=True, intent="rigid",
                                                          mode_min_speed=0.01), batch=4)  # fmt: skip
    slow = low._modes(low._intent(hist, torch.from_numpy(cmds.astype(np.float32))))[2]
    assert slow == PRIMITIVES.index("rotate+z")  # the slow turn passes a lower threshold
    # the chosen mode reaches the denoiser: the same noise with a fixed unknown mode gives other targets
    guided = DexGenController(model, config=cfg, batch=4).act(frames, cmds)
    fixed = DexGenController(model, config=ControllerConfig(alpha=0.3, mode=-1), batch=4).act(frames, cmds)
    assert not np.allclose(guided[:2], fixed[:2]) and np.allclose(guided[2:], fixed[2:])


def test_intent_modes_default_to_the_rotation_primitives_of_the_models_training_data():
    from dexgen.controller.dexgen_controller import DEFAULT_INTENT_MODES, trained_rotation_modes
    from dexgen.data.schema import PRIMITIVES
    from dexgen.teleop.commands import KinematicIntent

    model = tiny_model(mode="primitive", mode_dropout=0.1)
    assert trained_rotation_modes(model) == DEFAULT_INTENT_MODES  # a record that does not say
    model.record = {"dataset": {"primitives_seen": ["rotate-x", "rotate+x", "rotate+z", "translate+x"]}}
    assert trained_rotation_modes(model) == ("rotate+x", "rotate-x", "rotate+z")
    ctrl = DexGenController(model, config=ControllerConfig(alpha=0.3, mode_from_intent=True, intent="rigid"),
                            batch=2)  # fmt: skip
    frames = _frame(2)
    tips = frames[:, 32:44].reshape(2, 4, 3).astype(np.float64)
    hist = torch.from_numpy(np.repeat(frames[:, None], model.cfg.history, axis=1))
    cmds = np.stack([KinematicIntent(axis, 0.5, horizon=model.cfg.horizon).command(0, tips[i : i + 1])[0]
                     for i, axis in enumerate(("+x", "-z"))]).astype(np.float32)  # fmt: skip
    # +x is among the model's primitives now; -z is not, so that turn gets the unknown mode
    assert ctrl._modes(ctrl._intent(hist, torch.from_numpy(cmds))).tolist() == [PRIMITIVES.index("rotate+x"), -1]
    model.record = {"dataset": {"primitives_seen": ["translate+x", "grasp_to_grasp"]}}
    with pytest.raises(ValueError, match="no rotation primitive"):
        DexGenController(model, config=ControllerConfig(mode_from_intent=True))
    DexGenController(model, config=ControllerConfig())  # without the mode the primitives do not matter


def _rigid_and_gait_commands(model):
    """Two hands' frames (2, 44), fingertips (2, 4, 3) m and commands (2, T, 4, 3) m: hand 0 a rigid turn about
    +z (read as rigid), hand 1 fingertips moving apart at random (not rigid)."""
    from dexgen.teleop.commands import KinematicIntent

    frames = _frame(2)
    tips = frames[:, 32:44].reshape(2, 4, 3).astype(np.float64)
    rigid = KinematicIntent("+z", 0.5, horizon=model.cfg.horizon).command(0, tips[:1])[0]
    gait = 0.01 * np.random.default_rng(3).normal(size=(model.cfg.horizon, 4, 3))
    return frames, tips, np.stack([rigid, gait]).astype(np.float32)


def test_rigid_alpha_scale_weakens_guidance_only_for_commands_read_as_rigid_turns():
    model = tiny_model()
    with pytest.raises(ValueError, match="rigid_alpha_scale"):
        DexGenController(model, config=ControllerConfig(rigid_alpha_scale=-0.5))
    frames, tips, cmds = _rigid_and_gait_commands(model)

    def act(alpha, scale, candidates=1):
        cfg = ControllerConfig(alpha=alpha, rigid_alpha_scale=scale, candidates=candidates)
        return DexGenController(model, config=cfg, batch=2).act(frames, cmds)

    for k in (1, 3):  # one plan per hand, and best of k (each hand's strength repeated for its k candidates)
        scaled, plain, weak = act(0.4, 0.25, k), act(0.4, 1.0, k), act(0.1, 1.0, k)
        np.testing.assert_allclose(scaled[0], weak[0], atol=1e-5)  # the rigid turn: guided with 0.4 * 0.25
        np.testing.assert_allclose(scaled[1], plain[1], atol=1e-5)  # the gait-like command: with 0.4
        assert not np.allclose(scaled[0], plain[0])


def test_a_non_finite_first_output_falls_back_to_the_targets_in_force_within_the_limits():
    model = tiny_model()
    with torch.no_grad():
        model.idm.net[-1].bias.fill_(float("nan"))
    frame = _frame()[0]
    frame[16:32] = 7.0  # targets in force far outside every joint's range
    ctrl = DexGenController(model)
    for _ in range(2):  # the first call after construction and after a reset
        out = ctrl.act(frame)
        assert np.isfinite(out).all()
        assert (out >= LIMITS[:, 0] - 1e-6).all() and (out <= LIMITS[:, 1] + 1e-6).all()
        ctrl.reset()
    assert ctrl.rejected == 2


def test_huge_finite_commands_and_observations_are_refused_with_one_line():
    model = tiny_model()
    cfg = ControllerConfig(alpha=0.45, candidates=4, rigid_alpha_scale=0.1, command_gain=1.5)
    ctrl = DexGenController(model, config=cfg)
    with pytest.raises(ValueError, match="command moves a fingertip by more than 1 m"):
        ctrl.act(_frame()[0], np.full((model.cfg.horizon, 4, 3), 3e38))
    frame = _frame()[0]
    frame[20] = 1e30
    with pytest.raises(ValueError, match="observation holds 1e"):
        ctrl.act(frame)


@pytest.mark.parametrize(
    "field, value, message",
    [("alpha", float("nan"), "alpha must be finite and >= 0, got nan"),
     ("alpha", -0.5, "alpha must be finite and >= 0, got -0.5"),
     ("num_inference_steps", 0, "num_inference_steps must be at least 1"),
     ("rigid_alpha_scale", float("inf"), "rigid_alpha_scale must be finite"),
     ("intent_modes", ("rotate+q",), "intent_modes must name rotation primitives")],
)  # fmt: skip
def test_bad_config_values_are_refused_when_the_config_is_made(field, value, message):
    with pytest.raises(ValueError, match=message):
        ControllerConfig(**{field: value})


def test_the_shipped_method_is_fitted_to_what_a_model_has():
    from dataclasses import replace

    from dexgen.controller.dexgen_controller import SHIPPED_METHOD, fit_to_model, shipped_method

    full = tiny_model(mode="primitive", mode_dropout=0.1)
    assert shipped_method(full) == SHIPPED_METHOD  # a rotation predictor and mode dropout: as it ships
    bare = tiny_model(rotation_hidden=0)
    assert (shipped_method(bare).candidates, shipped_method(bare).mode_from_intent) == (1, False)
    assert replace(shipped_method(bare), candidates=8, mode_from_intent=True) == SHIPPED_METHOD  # nothing else
    with pytest.raises(ValueError, match="candidates 4 needs a model with a rotation predictor"):
        fit_to_model(replace(SHIPPED_METHOD, candidates=4), bare)  # not the preset's: asked for, so refused
    DexGenController(bare, config=shipped_method(bare)).act(_frame()[0], np.zeros((bare.cfg.horizon, 4, 3)))

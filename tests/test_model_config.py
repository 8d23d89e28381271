import pytest

from dexgen.model.config import ModelConfig


def test_round_trip_through_dict():
    cfg = ModelConfig(hidden=64, mode="primitive", num_inference_steps=5)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="unknown model config keys.*'width'"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "width": 3})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"idm_horizon": 9}, "idm_horizon"),
        ({"prediction_type": "v"}, "prediction_type"),
        ({"mode": "wrist"}, "mode"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"history": 0}, "history"),
        ({"rotation_noise": -0.1}, "rotation_noise"),
        ({"timestep_spacing": "even"}, "timestep_spacing must be one of leading, trailing, linspace"),
        ({"intent": True, "intent_dropout": 0.0}, r"intent_dropout must be in \(0, 1\)"),
        ({"intent_dropout": 1.0}, "intent_dropout"),
        ({"joint_noise_std": -0.01}, "joint_noise_std"),
        ({"gravity_obs": True, "obs_dim": 3}, "gravity_obs needs obs_dim > 3"),
    ],
)
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_records_from_before_the_rotation_predictor_have_none():
    old = {k: v for k, v in ModelConfig().to_dict().items() if k not in ("rotation_hidden", "rotation_noise")}
    assert ModelConfig.from_dict(old).rotation_hidden == 0
    assert ModelConfig().rotation_hidden > 0  # new models have one


def test_records_of_models_without_a_drop_risk_critic_load_and_one_with_a_critic_is_named():
    old = {**ModelConfig().to_dict(), "risk_hidden": 0, "risk_window": 40}  # records of that time
    assert ModelConfig.from_dict(old) == ModelConfig()
    with pytest.raises(ValueError, match="drop-risk critic"):
        ModelConfig.from_dict({**old, "risk_hidden": 64})


def test_mode_dropout_adds_an_unknown_mode_and_is_checked():
    assert ModelConfig().unknown_mode is None
    cfg = ModelConfig(mode="primitive", mode_dropout=0.2)
    assert cfg.unknown_mode == cfg.num_modes
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="mode_dropout needs mode primitive"):
        ModelConfig(mode_dropout=0.2)
    with pytest.raises(ValueError, match=r"mode_dropout must be in \[0, 1\)"):
        ModelConfig(mode="primitive", mode_dropout=1.0)


def test_records_from_before_the_new_settings_keep_how_they_were_made():
    from dexgen.sim.randomization import RandomizationConfig

    new = ModelConfig()
    assert new.timestep_spacing == "trailing" and new.joint_noise_std == RandomizationConfig().joint_noise_std > 0
    assert not new.intent and not new.gravity_obs and new.intent_dim == 0
    added = ("timestep_spacing", "joint_noise_std", "intent", "intent_dropout", "gravity_obs")
    old = ModelConfig.from_dict({k: v for k, v in new.to_dict().items() if k not in added})
    assert old.timestep_spacing == "leading" and old.joint_noise_std == 0.0 and not old.intent
    assert ModelConfig(intent=True).intent_dim == 6

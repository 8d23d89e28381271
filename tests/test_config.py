import pytest

from dexgen.rl.config import PPOConfig


def test_rsl_dict_maps_groups_for_an_asymmetric_actor_critic():
    d = PPOConfig(actor_privileged=False).to_rsl()
    assert d["obs_groups"] == {"actor": ["policy"], "critic": ["policy", "privileged"]}
    assert d["actor"]["obs_normalization"] and d["critic"]["obs_normalization"]
    assert PPOConfig().to_rsl()["obs_groups"]["actor"] == ["policy", "privileged"]
    assert d["algorithm"]["class_name"] == "PPO" and d["num_steps_per_env"] == 24


def test_schedule_reaches_rsl_and_rejects_unknown_names():
    assert PPOConfig().to_rsl()["algorithm"]["schedule"] == "adaptive"
    assert PPOConfig(schedule="fixed").to_rsl()["algorithm"]["schedule"] == "fixed"
    with pytest.raises(ValueError, match="schedule 'cosine'"):
        PPOConfig(schedule="cosine")

import pytest
import torch

from dexgen.model.dexgen_model import DexGenModel
from model_helpers import random_obs, tiny_model


def test_sampling_is_deterministic_for_a_seed():
    model = tiny_model()
    obs = random_obs(3, model.cfg)
    a = model.sample(obs, generator=torch.Generator().manual_seed(7))
    b = model.sample(obs, generator=torch.Generator().manual_seed(7))
    c = model.sample(obs, generator=torch.Generator().manual_seed(8))
    assert a.shape == (3, model.cfg.horizon, 4, 3)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_number_of_inference_steps_is_an_option():
    model = tiny_model()
    calls = []
    model.sample(random_obs(1, model.cfg), num_inference_steps=3, guide=lambda x, s: calls.append(s) or x)
    assert len(calls) == 3
    assert calls == sorted(calls, reverse=True)  # noise variance falls as denoising proceeds
    assert 0.0 < calls[-1] < calls[0] <= 1.0
    with pytest.raises(ValueError, match="num_inference_steps"):
        model.sample(random_obs(1, model.cfg), num_inference_steps=1000)


def test_identity_guide_changes_nothing_much():
    model = tiny_model()
    obs = random_obs(2, model.cfg)
    noise = torch.randn(2, model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(0))
    plain = model.sample(obs, noise=noise)
    guided = model.sample(obs, noise=noise, guide=lambda x0, s: x0)
    assert torch.allclose(plain, guided, atol=1e-5)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample"])
def test_a_guide_that_pins_the_estimate_lands_there(prediction_type):
    model = tiny_model(prediction_type=prediction_type)
    obs = random_obs(2, model.cfg)
    target = torch.full((2, model.cfg.horizon, 4, 3), 0.5)
    out = model.sample(obs, generator=torch.Generator().manual_seed(0), guide=lambda x0, s: target)
    assert torch.allclose(model.dx_norm.normalize(out), target, atol=1e-3)


def test_observation_shape_and_nan_are_refused():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"shape \(B, 3, 44\)"):
        model.sample(torch.zeros(1, 2, 44))
    obs = random_obs(1, model.cfg)
    obs[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.sample(obs)


def test_losses_are_finite_and_masked():
    model = tiny_model()
    obs = random_obs(4, model.cfg)
    dx = 0.01 * torch.randn(4, model.cfg.horizon, 4, 3)
    mask = torch.ones(4, model.cfg.horizon, dtype=torch.bool)
    full = model.diffusion_loss(obs, dx, mask=mask, generator=torch.Generator().manual_seed(0))
    none = model.diffusion_loss(obs, dx, mask=torch.zeros_like(mask), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(full) and full > 0
    assert none == 0
    assert torch.isfinite(model.idm_loss(obs, dx, obs[:, -1, 16:32] + 0.01))


def test_idm_targets_are_relative_to_the_targets_in_force():
    model = tiny_model()
    for p in model.idm.parameters():
        torch.nn.init.zeros_(p)
    obs = random_obs(2, model.cfg)
    out = model.idm_targets(obs, torch.zeros(2, model.cfg.horizon, 4, 3))
    assert torch.allclose(out, obs[:, -1, 16:32] + model.delta_norm.mean)
    with pytest.raises(ValueError, match="fingertip motion"):
        model.idm_targets(obs, torch.zeros(2, 1, 4, 3))


def test_model_is_a_torch_module():
    assert isinstance(tiny_model(), DexGenModel)
    assert sum(p.numel() for p in tiny_model().parameters()) > 0


def test_rotation_predictor_and_its_loss():
    model = tiny_model()
    obs = random_obs(5, model.cfg)
    dx = 0.01 * torch.randn(5, model.cfg.horizon, 4, 3)
    assert model.predict_rotation(obs, dx).shape == (5, 3)
    loss = model.rotation_loss(obs, dx, torch.zeros(5, 3), generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    bare = tiny_model(rotation_hidden=0)
    assert bare.rotation is None and not any(k.startswith("angvel_norm") for k in bare.state_dict())
    with pytest.raises(ValueError, match="no rotation predictor"):
        bare.predict_rotation(obs, dx)


def _mode_model_with_inputs():
    """A tiny model trained with mode dropout whose denoiser's output depends on its inputs, two observation
    histories and the initial noise for them."""
    model = tiny_model(mode="primitive", mode_dropout=0.1)
    for p in model.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.2)
    obs = random_obs(2, model.cfg)
    return model, obs, torch.randn(2, model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(0))


def test_unknown_mode_of_a_model_trained_with_mode_dropout():
    model, obs, noise = _mode_model_with_inputs()
    unknown = model.sample(obs, noise=noise)  # no mode: the unknown one
    assert torch.equal(unknown, model.sample(obs, noise=noise, mode=torch.tensor([-1, -1])))
    mixed = model.sample(obs, noise=noise, mode=torch.tensor([4, -1]))  # per-sample modes
    assert torch.equal(mixed[1], unknown[1]) and not torch.allclose(mixed[0], unknown[0])
    with pytest.raises(ValueError, match="mode ids must be below 11"):
        model.sample(obs, noise=noise, mode=torch.tensor(11))
    plain = tiny_model(mode="primitive")
    with pytest.raises(ValueError, match="without an unknown mode"):
        plain.sample(obs, noise=noise, mode=torch.tensor(-1))


def _intent_model_with_inputs(**overrides):
    """A tiny model with an intent input whose denoiser's output depends on its inputs, two observation histories,
    the initial noise for them and two intents (rad/s, m/s)."""
    model = tiny_model(intent=True, **overrides)
    for p in model.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.2)
    model.intent_norm.set(torch.zeros(6), torch.tensor([0.5, 0.5, 0.5, 0.01, 0.01, 0.01]))
    obs = random_obs(2, model.cfg)
    noise = torch.randn(2, model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(0))
    intent = torch.tensor([[0.0, 0.0, 0.5, 0.0, 0.0, 0.0], [0.3, 0.0, -0.5, 0.01, 0.0, 0.0]])
    return model, obs, noise, intent


def test_intent_scale_is_classifier_free_guidance_on_the_intent():
    model, obs, noise, intent = _intent_model_with_inputs()
    prior = model.sample(obs, noise=noise)  # no intent: the null intent, the unconditional prior
    given = model.sample(obs, noise=noise, intent=intent)
    assert not torch.allclose(given, prior, atol=1e-4)
    # scale 0 is exactly the unconditional sample, scale 1 the intent as given
    assert torch.equal(model.sample(obs, noise=noise, intent=intent, intent_scale=0.0), prior)
    assert torch.equal(model.sample(obs, noise=noise, intent=intent, intent_scale=1.0), given)
    # one DDIM step is affine in the prediction, so u + s (c - u) shows in the sample
    one = {"noise": noise, "num_inference_steps": 1, "intent": intent}
    u, c = model.sample(obs, **one, intent_scale=0.0), model.sample(obs, **one)
    for s in (0.5, 2.0, 3.0):
        assert torch.allclose(model.sample(obs, **one, intent_scale=s), u + s * (c - u), atol=1e-6)
    assert torch.equal(model.sample(obs, noise=noise, intent=intent[0]), model.sample(obs, noise=noise,
                       intent=intent[:1].expand(2, 6)))  # fmt: skip
    with pytest.raises(ValueError, match="intent_scale must be finite"):
        model.sample(obs, noise=noise, intent=intent, intent_scale=-1.0)
    with pytest.raises(ValueError, match=r"intent must have shape \(6,\) or \(B, 6\)"):
        model.sample(obs, noise=noise, intent=intent[:, :3])
    with pytest.raises(ValueError, match="no intent input"):
        tiny_model().sample(obs, noise=noise, intent=intent)
    moded, *_ = _intent_model_with_inputs(mode="primitive", mode_dropout=0.1)
    for m in (torch.tensor([4, -1]), None):  # with a mode, or the unknown one
        u, c = moded.sample(obs, **one, mode=m, intent_scale=0.0), moded.sample(obs, **one, mode=m)
        assert torch.allclose(moded.sample(obs, **one, mode=m, intent_scale=2.0), u + 2.0 * (c - u), atol=1e-6)


def test_trailing_spacing_samples_from_the_last_training_step():
    from dexgen.model.config import ModelConfig

    new = ModelConfig()
    assert new.timestep_spacing == "trailing" and new.prediction_type == "sample"  # a new config's
    assert int(DexGenModel(new).sampler().timesteps[0]) == new.num_train_timesteps - 1
    model = tiny_model(timestep_spacing="trailing", prediction_type="sample")
    steps = model.sampler().timesteps
    assert int(steps[0]) == model.cfg.num_train_timesteps - 1 and len(steps) == model.cfg.num_inference_steps
    leading = tiny_model(timestep_spacing="leading").sampler().timesteps
    assert int(leading[0]) < model.cfg.num_train_timesteps - 1 and int(leading[-1]) == 0
    # predicting the noise, the first step from ᾱ ~ 0 would multiply the noise estimate's error by thousands
    with pytest.raises(ValueError, match="epsilon prediction cannot sample from timestep 19"):
        tiny_model(timestep_spacing="trailing", prediction_type="epsilon")
    x = model.sample(random_obs(64, model.cfg), generator=torch.Generator().manual_seed(0))
    assert float(model.dx_norm.normalize(x).abs().max()) < 20  # an untrained x0 prediction stays bounded


SHIPPED_SAMPLES = {
    "palm_up": (-0.04545862600207329, 1.0422370433807373, [-0.014446841, 0.006758082, -0.014260002, 0.00520758,
                0.000354638, -0.004604721, -0.004947857, 0.001630669, -0.001101747, -0.013482982, 0.008766346,
                0.007385249]),
    "palm_down": (0.05268818140029907, 1.1477949619293213, [-0.013191912, 0.006582283, 0.001896264, -0.009680793,
                  0.005930896, -0.007381493, -0.016944053, 0.007919, 0.001264627, -0.006587262, -0.000494194,
                  0.012220481]),
}  # fmt: skip
"""What the shipped models sampled (sum, sum of magnitudes, metres, and the last step of the second sample) for
the observations and seed of ``test_shipped_models_sample_as_they_did``, before the intent, the gravity input and
the timestep spacing setting existed."""


@pytest.mark.parametrize("wrist", SHIPPED_SAMPLES)
def test_shipped_models_sample_as_they_did(wrist):
    from dexgen.model.checkpoint import load_model, shipped_model_path

    model = load_model(shipped_model_path(wrist))
    assert model.cfg.timestep_spacing == "leading" and model.cfg.joint_noise_std == 0.0
    assert not model.cfg.intent and not model.cfg.gravity_obs
    assert model.sampler().timesteps.tolist() == [84, 72, 60, 48, 36, 24, 12, 0]
    g = torch.Generator().manual_seed(0)
    obs = model.obs_norm.mean + model.obs_norm.std * 0.5 * torch.randn(2, 3, 44, generator=g)
    dx = model.sample(obs, generator=torch.Generator().manual_seed(1), mode=torch.tensor([4, 5]))
    total, size, last = SHIPPED_SAMPLES[wrist]
    assert float(dx.sum()) == pytest.approx(total, abs=1e-6) and float(dx.abs().sum()) == pytest.approx(size, abs=1e-6)
    torch.testing.assert_close(dx[1, -1].flatten(), torch.tensor(last), atol=1e-8, rtol=0)


def test_idm_and_rotation_losses_ignore_padded_steps():
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    obs = random_obs(6, model.cfg)
    dx = 0.01 * torch.randn(6, model.cfg.horizon, 4, 3, generator=g)
    targets, angvel = obs[:, -1, 16:32] + 0.01, torch.randn(6, 3, generator=g)
    mask = torch.ones(6, model.cfg.horizon, dtype=torch.bool)
    mask[1, 2:] = False  # padded within the IDM's horizon (4 steps of TINY's 8)
    mask[2, 6:] = False  # padded past it: the IDM sees only real steps
    mask[3, 0:] = False
    changed = dx.clone()
    changed[~mask] = 0.05  # other values on padded steps
    changed_targets, changed_angvel = targets.clone(), angvel.clone()
    changed_targets[[1, 3]], changed_angvel[[1, 2, 3]] = 0.7, 5.0  # labels of windows that do not count

    def losses(d, t, a, m):
        rot = model.rotation_loss(obs, d, a, mask=m, generator=torch.Generator().manual_seed(1))
        return model.idm_loss(obs, d, t, mask=m), rot

    idm, rot = losses(dx, targets, angvel, mask)
    idm2, rot2 = losses(changed, changed_targets, changed_angvel, mask)
    assert torch.equal(idm, idm2) and torch.equal(rot, rot2)
    unmasked = losses(changed, changed_targets, changed_angvel, None)
    assert not torch.equal(idm, unmasked[0]) and not torch.equal(rot, unmasked[1])
    kept = [0, 2, 4, 5]  # the IDM's windows: every one whose first 4 steps are real
    assert torch.allclose(idm, model.idm_loss(obs[kept], dx[kept], targets[kept]))

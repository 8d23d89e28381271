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

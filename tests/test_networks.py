import pytest
import torch

from dexgen.model.config import ModelConfig
from dexgen.model.networks import Denoiser, InverseDynamics, timestep_embedding

CFG = ModelConfig(hidden=32, blocks=2, cond_dim=32, idm_hidden=32, idm_layers=2)


def test_timestep_embedding_distinguishes_steps():
    e = timestep_embedding(torch.tensor([0, 1, 50]), 64)
    assert e.shape == (3, 64)
    assert not torch.allclose(e[0], e[1])


def test_denoiser_shapes_and_conditioning():
    torch.manual_seed(0)
    net = Denoiser(CFG)
    for p in net.parameters():  # leave the zero-initialized identity start, so the conditioning matters
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(5, CFG.horizon, 4, 3)
    obs = torch.randn(5, CFG.history, CFG.obs_dim)
    t = torch.full((5,), 10)
    y = net(x, t, obs)
    assert y.shape == x.shape
    assert not torch.allclose(y, net(x, t, obs + 1.0))
    assert not torch.allclose(y, net(x, t + 30, obs))


def test_mode_input_is_required_and_used():
    torch.manual_seed(0)
    net = Denoiser(ModelConfig(**{**CFG.to_dict(), "mode": "primitive"}))
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x, obs, t = torch.randn(2, 8, 4, 3), torch.randn(2, 3, 44), torch.tensor([3, 3])
    with pytest.raises(ValueError, match="mode input"):
        net(x, t, obs)
    assert not torch.allclose(net(x, t, obs, torch.tensor([0, 0])), net(x, t, obs, torch.tensor([4, 4])))


def test_inverse_dynamics_shape():
    net = InverseDynamics(CFG)
    out = net(torch.randn(7, CFG.history, CFG.obs_dim), torch.randn(7, CFG.idm_horizon, 4, 3))
    assert out.shape == (7, 16)


def test_precomputed_films_give_the_same_prediction():
    torch.manual_seed(0)
    net = Denoiser(CFG)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    obs = torch.randn(3, CFG.history, CFG.obs_dim)
    x = torch.randn(3, CFG.horizon, 4, 3)
    timesteps = torch.tensor([40, 20, 0])
    films = net.films(timesteps, obs, None)
    assert films[0].shape == (3, 3, 2 * CFG.hidden)
    for k, t in enumerate(timesteps):
        expected = net(x, t.expand(3), obs)
        assert torch.allclose(net.denoise(x, [f[k] for f in films]), expected, atol=1e-5)

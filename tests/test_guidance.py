import pytest
import torch

from dexgen.controller.guidance import command_distance, command_guide
from model_helpers import random_obs, tiny_model


def _sample(model, obs, command, alpha):
    noise = torch.randn(len(obs), model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(5))
    return model.sample(obs, noise=noise, guide=command_guide(model, command, alpha))


def test_alpha_zero_equals_unguided_sampling():
    model = tiny_model()
    obs = random_obs(3, model.cfg)
    command = 0.02 * torch.ones(3, model.cfg.horizon, 4, 3)
    noise = torch.randn(3, model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(_sample(model, obs, command, 0.0), model.sample(obs, noise=noise), atol=1e-5)


def test_larger_alpha_reduces_the_distance_to_the_command():
    model = tiny_model()
    obs = random_obs(4, model.cfg)
    command = model.dx_norm.unnormalize(torch.full((4, model.cfg.horizon, 4, 3), 1.5))
    dist = [float(command_distance(model, _sample(model, obs, command, a), command).mean()) for a in (0, 0.1, 0.3)]
    assert dist[0] > dist[1] > dist[2]


def test_negative_alpha_is_refused():
    model = tiny_model()
    with pytest.raises(ValueError, match="alpha"):
        command_guide(model, torch.zeros(1, model.cfg.horizon, 4, 3), -1.0)

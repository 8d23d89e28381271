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


def test_workspace_guide_pulls_fingertips_back_into_the_ball():
    from dexgen.controller.guidance import workspace_guide

    model = tiny_model()
    tips = torch.zeros(1, 4, 3)
    far = model.dx_norm.normalize(torch.full((1, model.cfg.horizon, 4, 3), 0.2))  # 35 cm from the centre
    guide = workspace_guide(model, tips, centre=torch.zeros(3), radius=0.1, weight=1.0)
    out = model.dx_norm.unnormalize(guide(far, 0.5))  # step min(2 * 1 * 0.5, 1) = 1: onto the surface
    torch.testing.assert_close(out.norm(dim=-1), torch.full((1, model.cfg.horizon, 4), 0.1), atol=1e-5, rtol=0)
    inside = model.dx_norm.normalize(torch.full((1, model.cfg.horizon, 4, 3), 0.01))
    torch.testing.assert_close(guide(inside, 0.5), inside)


def test_compose_applies_guides_in_order_and_skips_none():
    from dexgen.controller.guidance import compose

    assert compose(None, None) is None
    g = compose(lambda x, s: x + 1, None, lambda x, s: x * 2)
    assert float(g(torch.zeros(1), 0.5)) == 2.0


def test_forward_diffused_command_starts_partway():
    from dexgen.controller.guidance import forward_diffused

    model = tiny_model()
    command = model.dx_norm.unnormalize(torch.ones(2, model.cfg.horizon, 4, 3))
    late, k = forward_diffused(model, command, model.cfg.num_inference_steps - 1,
                               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert k == model.cfg.num_inference_steps - 1
    assert (late - 1.0).abs().mean() < 0.2  # the last timestep adds little noise
    with pytest.raises(ValueError, match="partial-noise step"):
        forward_diffused(model, command, 99)


def test_a_very_large_alpha_lands_on_the_command_without_overshooting():
    model = tiny_model()
    obs = random_obs(2, model.cfg)
    command = model.dx_norm.unnormalize(torch.full((2, model.cfg.horizon, 4, 3), 0.7))
    out = _sample(model, obs, command, 1e6)  # every step's estimate is moved exactly onto the command
    torch.testing.assert_close(model.dx_norm.normalize(out), torch.full_like(out, 0.7), atol=1e-3, rtol=0)


def test_joint_limit_guide_reduces_the_violation_of_the_idm_targets():
    from dexgen.controller.guidance import joint_limit_guide, joint_limit_violation

    model = tiny_model()
    obs = random_obs(4, model.cfg)
    x0 = torch.randn(4, model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(1))
    q = model.idm_targets(obs, model.dx_norm.unnormalize(x0)).detach()
    lower, upper = q.min(dim=0).values + 0.05, q.max(dim=0).values - 0.05  # every sample violates some limit
    limits = {"lower": lower, "upper": upper}
    before = joint_limit_violation(model, obs, model.dx_norm.unnormalize(x0), **limits).detach()
    assert bool((before > 0).all())
    after = []
    for weight in (0.02, 0.1):  # fractions 0.02 and 0.1 of the linearized correction: both in the linear regime
        with torch.inference_mode():  # as inside the sampler
            guide = joint_limit_guide(model, obs, margin=0.0, weight=weight, **limits)
            out = guide(x0, 0.5)
        after.append(joint_limit_violation(model, obs, model.dx_norm.unnormalize(out), **limits).detach())
    assert bool((after[0] < before).all()) and bool((after[1] < after[0]).all())
    inside = joint_limit_guide(model, obs, margin=0.0, weight=1.0, lower=q.min(0).values - 1,
                               upper=q.max(0).values + 1)  # fmt: skip
    torch.testing.assert_close(inside(x0, 0.5), x0)  # nothing to correct
    with pytest.raises(ValueError, match="margin"):
        joint_limit_guide(model, obs, margin=-0.1, weight=1.0, **limits)

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


def test_a_very_large_alpha_lands_on_the_command_without_overshooting():
    model = tiny_model()
    obs = random_obs(2, model.cfg)
    command = model.dx_norm.unnormalize(torch.full((2, model.cfg.horizon, 4, 3), 0.7))
    out = _sample(model, obs, command, 1e6)  # every step's estimate is moved exactly onto the command
    torch.testing.assert_close(model.dx_norm.normalize(out), torch.full_like(out, 0.7), atol=1e-3, rtol=0)


def _tips(n: int, seed: int = 0) -> torch.Tensor:
    return 0.04 * torch.randn(n, 4, 3, generator=torch.Generator().manual_seed(seed))


def test_rigid_projector_keeps_rigid_motion_and_removes_the_rest():
    from dexgen.controller.guidance import rigid_projector

    tips = _tips(3)
    proj = rigid_projector(tips)
    torch.testing.assert_close(proj @ proj, proj, atol=1e-5, rtol=0)  # a projection
    torch.testing.assert_close(proj, proj.transpose(1, 2), atol=1e-5, rtol=0)  # orthogonal
    assert torch.allclose(torch.diagonal(proj, dim1=1, dim2=2).sum(-1), torch.full((3,), 6.0), atol=1e-4)
    # a small turn about an arbitrary point plus a shift is rigid: kept whole
    theta, shift, pivot = torch.tensor([0.01, -0.02, 0.015]), torch.tensor([0.001, 0.0, -0.002]), torch.ones(3) * 0.1
    rigid = torch.linalg.cross(theta.expand(3, 4, 3), tips - pivot) + shift
    torch.testing.assert_close((proj @ rigid.flatten(1)[..., None])[..., 0], rigid.flatten(1), atol=1e-6, rtol=0)
    # one finger moving alone is mostly not rigid
    one = torch.zeros(3, 12)
    one[:, 0] = 0.01
    assert bool(((proj @ one[..., None])[..., 0].norm(dim=1) < 0.9 * one.norm(dim=1)).all())


def _rigid_sample(model, obs, command, tips, alpha):
    noise = torch.randn(len(obs), model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(5))
    return model.sample(obs, noise=noise, guide=command_guide(model, command, alpha, component="rigid", tips=tips))


def _turn_command(tips: torch.Tensor, omega_z: float, horizon: int) -> torch.Tensor:
    """Fingertips turning rigidly about their centroid's vertical at omega_z rad/s, 20 Hz, (B, T, 4, 3)."""
    steps = []
    for k in range(1, horizon + 1):
        a = torch.tensor(omega_z * 0.05 * k)
        rot = torch.stack([torch.stack([a.cos(), -a.sin(), a * 0]), torch.stack([a.sin(), a.cos(), a * 0]),
                           torch.tensor([0.0, 0.0, 1.0])])  # fmt: skip
        centre = tips.mean(1, keepdim=True)
        steps.append((tips - centre) @ rot.T + centre - tips)
    return torch.stack(steps, 1)


def test_command_rotation_reads_the_intended_angular_velocity_off_a_rigid_turn():
    from dexgen.controller.guidance import command_rotation

    tips = _tips(2, seed=3)
    w = command_rotation(_turn_command(tips, 0.5, 8), tips)
    torch.testing.assert_close(w, torch.tensor([[0.0, 0.0, 0.5]] * 2), atol=0.01, rtol=0)


def test_rigid_fraction_is_one_for_a_rigid_turn_and_small_for_fingers_moving_apart():
    from dexgen.controller.guidance import rigid_fraction_of

    tips = _tips(3, seed=4)
    turn = _turn_command(tips, 0.5, 8)
    torch.testing.assert_close(rigid_fraction_of(turn, tips), torch.ones(3), atol=0.01, rtol=0)  # linearized
    spread = torch.zeros(3, 8, 4, 3)
    spread[..., 0, 0], spread[..., 1, 0] = 0.01, -0.01  # two fingertips move apart along x, the others stay
    assert bool((rigid_fraction_of(spread, tips) < 0.9).all())


def test_command_intent_reads_a_rigid_turn_rigidly_and_gaiting_through_the_predictor():
    from dexgen.controller.guidance import command_intent, command_rotation

    model = tiny_model()
    obs, tips = random_obs(2, model.cfg), _tips(2, seed=6)
    turn = _turn_command(tips, 0.5, model.cfg.horizon)
    gait = torch.zeros(2, model.cfg.horizon, 4, 3)
    gait[..., 0, 0], gait[..., 2, 1] = 0.01, -0.01
    with torch.no_grad():
        for command in (turn, gait):
            torch.testing.assert_close(command_intent(model, obs, command, tips, intent="rigid"),
                                       command_rotation(command, tips))  # fmt: skip
            torch.testing.assert_close(command_intent(model, obs, command, tips, intent="predicted"),
                                       model.predict_rotation(obs, command))  # fmt: skip
        torch.testing.assert_close(command_intent(model, obs, turn, tips), command_rotation(turn, tips))
        torch.testing.assert_close(command_intent(model, obs, gait, tips), model.predict_rotation(obs, gait))
        mixed = torch.cat([turn[:1], gait[1:]])  # auto decides per hand
        want = torch.cat([command_rotation(turn[:1], tips[:1]), model.predict_rotation(obs[1:], gait[1:])])
        torch.testing.assert_close(command_intent(model, obs, mixed, tips), want)
        # a reading made beforehand (the controller's, shared with α) is used as given
        torch.testing.assert_close(command_intent(model, obs, mixed, tips, rigid=torch.tensor([True, False])), want)
        flipped = torch.cat([model.predict_rotation(obs[:1], turn[:1]), command_rotation(gait[1:], tips[1:])])
        torch.testing.assert_close(command_intent(model, obs, mixed, tips, rigid=torch.tensor([False, True])), flipped)
    with pytest.raises(ValueError, match="intent"):
        command_intent(model, obs, turn, tips, intent="psychic")


def test_per_sample_alpha_equals_each_samples_own_float_alpha():
    model = tiny_model()
    obs = random_obs(3, model.cfg)
    command = model.dx_norm.unnormalize(torch.full((3, model.cfg.horizon, 4, 3), 1.5))
    alphas = torch.tensor([0.0, 0.1, 0.3])
    noise = torch.randn(3, model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(5))
    mixed = model.sample(obs, noise=noise, guide=command_guide(model, command, alphas))
    for i, a in enumerate(alphas.tolist()):
        alone = model.sample(obs, noise=noise, guide=command_guide(model, command, a))
        torch.testing.assert_close(mixed[i], alone[i], atol=1e-5, rtol=0)


def test_per_sample_alpha_of_wrong_shape_or_negative_is_refused():
    model = tiny_model()
    command = torch.zeros(2, model.cfg.horizon, 4, 3)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        command_guide(model, command, torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="alpha"):
        command_guide(model, command, torch.tensor([0.1, -0.2]))
    with pytest.raises(ValueError, match="alpha"):
        command_guide(model, command, torch.tensor([0.1, float("nan")]))

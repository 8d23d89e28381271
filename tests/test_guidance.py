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


def test_rigid_guidance_reduces_the_rigid_distance_and_equals_unguided_at_alpha_zero():
    from dexgen.controller.guidance import rigid_command_distance

    model = tiny_model()
    obs, tips = random_obs(4, model.cfg), _tips(4, seed=1)
    turn = torch.linalg.cross(torch.tensor([0.0, 0.0, 0.05]).expand(4, 4, 3), tips - tips.mean(1, keepdim=True))
    command = turn[:, None] * torch.arange(1, model.cfg.horizon + 1).view(1, -1, 1, 1)  # a steady turn
    noise = torch.randn(4, model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(_rigid_sample(model, obs, command, tips, 0.0), model.sample(obs, noise=noise))
    dist = [float(rigid_command_distance(_rigid_sample(model, obs, command, tips, a), command, tips).mean())
            for a in (0.0, 0.1, 0.3)]  # fmt: skip
    assert dist[0] > dist[1] > dist[2]


def test_rigid_guidance_needs_tips_and_a_known_component():
    model = tiny_model()
    command = torch.zeros(1, model.cfg.horizon, 4, 3)
    with pytest.raises(ValueError, match="fingertip positions"):
        command_guide(model, command, 0.3, component="rigid")
    with pytest.raises(ValueError, match="component"):
        command_guide(model, command, 0.3, component="twist")


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


def test_rotation_guidance_moves_the_predicted_rotation_toward_the_command():
    from dexgen.controller.guidance import command_rotation, rotation_guide

    model = tiny_model()
    obs, tips = random_obs(4, model.cfg), _tips(4, seed=2)
    command = _turn_command(tips, 2.0, model.cfg.horizon)
    want = command_rotation(command, tips)
    noise = torch.randn(4, model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(5))
    errors = []
    for weight in (0.0, 0.1, 1.0):
        guide = rotation_guide(model, obs, command, tips, weight=weight)
        dx = model.sample(obs, noise=noise, guide=guide)
        with torch.no_grad():
            errors.append(float((model.predict_rotation(obs, dx) - want).norm(dim=1).mean()))
    assert errors[0] > errors[1] > errors[2]
    with pytest.raises(ValueError, match="no rotation predictor"):
        rotation_guide(tiny_model(rotation_hidden=0), obs, command, tips, weight=1.0)
    with pytest.raises(ValueError, match="weight"):
        rotation_guide(model, obs, command, tips, weight=-1.0)


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


def test_onward_ranking_forgives_overshoot_along_the_intended_axis_only():
    from dexgen.controller.guidance import intent_miss

    want = torch.tensor([[0.0, 0.0, 0.2]] * 4)
    predicted = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.1], [0.1, 0.0, 0.2], [0.0, 0.0, -0.2]])
    closest = intent_miss(predicted, want)
    onward = intent_miss(predicted, want, ranking="onward")
    assert torch.allclose(closest, torch.tensor([0.09, 0.01, 0.01, 0.16]))
    assert torch.allclose(onward, torch.tensor([0.0, 0.01, 0.01, 0.16]))  # only overshoot is forgiven
    # with no intended rotation there is no axis: onward is closest
    zero = torch.zeros(4, 3)
    assert torch.allclose(intent_miss(predicted, zero, ranking="onward"), intent_miss(predicted, zero))
    with pytest.raises(ValueError, match="ranking"):
        intent_miss(predicted, want, ranking="furthest")


def test_plan_guide_pulls_the_overlapping_steps_of_active_samples_onto_the_remainder():
    from dexgen.controller.guidance import plan_guide

    model = tiny_model()
    horizon = model.cfg.horizon
    remainder = model.dx_norm.unnormalize(torch.full((2, horizon, 4, 3), 0.8))[:, : horizon - 1]
    guide = plan_guide(model, remainder, 1.0, active=torch.tensor([True, False]))
    x0 = torch.zeros(2, horizon, 4, 3)
    out = guide(x0, 0.5)  # step min(2 * 1 * 0.5, 1) = 1: onto the remainder
    torch.testing.assert_close(out[0, : horizon - 1], torch.full((horizon - 1, 4, 3), 0.8), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, horizon - 1 :], x0[0, horizon - 1 :])  # the new last step is left free
    torch.testing.assert_close(out[1], x0[1])  # no plan to keep on with
    half = plan_guide(model, remainder, 0.25)(x0, 0.5)  # step 0.25
    torch.testing.assert_close(half[:, : horizon - 1], torch.full((2, horizon - 1, 4, 3), 0.2), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="weight"):
        plan_guide(model, remainder, -1.0)
    with pytest.raises(ValueError, match="remainder"):
        plan_guide(model, torch.zeros(2, horizon, 4, 3), 1.0)


def test_per_sample_alpha_equals_each_samples_own_float_alpha():
    model = tiny_model()
    obs = random_obs(3, model.cfg)
    command = model.dx_norm.unnormalize(torch.full((3, model.cfg.horizon, 4, 3), 1.5))
    alphas = torch.tensor([0.0, 0.1, 0.3])
    for component in ("full", "rigid"):
        tips = 0.03 * torch.randn(3, 4, 3, generator=torch.Generator().manual_seed(2))
        noise = torch.randn(3, model.cfg.horizon, 4, 3, generator=torch.Generator().manual_seed(5))
        mixed = model.sample(obs, noise=noise, guide=command_guide(model, command, alphas, component=component,
                                                                    tips=tips))  # fmt: skip
        for i, a in enumerate(alphas.tolist()):
            alone = model.sample(obs, noise=noise, guide=command_guide(model, command, a, component=component,
                                                                        tips=tips))  # fmt: skip
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


def test_plan_stray_is_the_mean_fingertip_distance_and_blended_miss_is_relative_per_hand():
    from dexgen.controller.guidance import blended_miss, plan_stray

    command = torch.zeros(2, 3, 4, 3)
    plans = torch.zeros(2, 3, 4, 3)
    plans[1, :, :, 0] = 0.003  # every fingertip 3 mm off at every step
    plans[1, 0, 0] = torch.tensor([0.003, 0.004, 0.0])  # one 5 mm off: mean (5 + 11 * 3) / 12 mm
    assert torch.allclose(plan_stray(plans, command), torch.tensor([0.0, (0.005 + 11 * 0.003) / 12]))
    rotation = torch.tensor([1.0, 3.0, 10.0, 30.0])  # two hands of two candidates, each hand on its own scale
    stray = torch.tensor([0.004, 0.002, 0.004, 0.002])
    assert torch.allclose(blended_miss(rotation, stray, k=2, weight=0.0), torch.tensor([0.5, 1.5, 0.5, 1.5]))
    blend = blended_miss(rotation, stray, k=2, weight=2.0)  # stray relative to the mean: 4/3 and 2/3
    assert torch.allclose(blend, torch.tensor([0.5 + 8 / 3, 1.5 + 4 / 3] * 2))
    assert torch.equal(blend.view(2, 2).argmin(dim=1), torch.tensor([1, 1]))  # the weight turns the choice

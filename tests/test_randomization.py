import numpy as np
import pytest

from dexgen.sim.hand_batch import HandBatch
from dexgen.sim.objects import get_object
from dexgen.sim.randomization import DomainRandomizer, RandomizationConfig


def _randomized(seed, config=RandomizationConfig()):
    sims = HandBatch([get_object("cube_45"), get_object("sphere_r30")], num_threads=1)
    dr = DomainRandomizer(sims, config)
    dr.randomize(np.array([0, 1]), np.random.default_rng(seed))
    return sims, dr


def test_parameters_are_drawn_in_range_and_written_to_models():
    cfg = RandomizationConfig()
    sims, dr = _randomized(0, cfg)
    g, b = sims.index.object_geom, sims.index.object_body
    for i in range(2):
        mass, friction, scale, *_, kp, damping = dr.params[i]
        model, base = sims.models[i], sims.base_models[i]
        assert cfg.mass_scale[0] <= mass <= cfg.mass_scale[1]
        assert model.body_mass[b] == pytest.approx(base.body_mass[b] * mass)
        assert model.geom_friction[g, 0] == pytest.approx(friction)
        np.testing.assert_allclose(model.geom_size[g], base.geom_size[g] * scale)
        np.testing.assert_allclose(model.actuator_gainprm[:, 0], 3.0 * kp)
        np.testing.assert_allclose(model.actuator_biasprm[:, 1], -3.0 * kp)
        assert model.dof_damping[sims.index.hand_dof[0]] == pytest.approx(0.1 * damping)
    # base models are never touched
    assert sims.base_models[0].body_mass[b] == pytest.approx(0.08)


def test_same_seed_same_draws_and_disabled_is_nominal():
    _, a = _randomized(7)
    _, b = _randomized(7)
    _, c = _randomized(8)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    sims, d = _randomized(7, RandomizationConfig(enabled=False))
    assert d.params[0, 0] == 1.0 and sims.models[0].body_mass[sims.index.object_body] == pytest.approx(0.08)
    assert (d.joint_noise(np.random.default_rng(0), (2, 16)) == 0).all()


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError, match="mass_scale"):
        RandomizationConfig(mass_scale=(1.2, 0.8))

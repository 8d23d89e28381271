import numpy as np
import pytest
import torch

from dexgen.model.normalizer import STD_FLOOR, Normalizer


def test_fit_normalizes_to_zero_mean_unit_std():
    x = np.random.default_rng(0).normal(3.0, 2.0, (1000, 4, 3))
    n = Normalizer((4, 3))
    n.fit(x)
    z = n.normalize(torch.as_tensor(x, dtype=torch.float32))
    assert torch.allclose(z.mean(0), torch.zeros(4, 3), atol=1e-4)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(4, 3), atol=1e-4)
    assert torch.allclose(n.unnormalize(z), torch.as_tensor(x, dtype=torch.float32), atol=1e-5)


def test_constant_feature_maps_to_zero():
    n = Normalizer((2,))
    n.fit(np.array([[1.0, 5.0], [2.0, 5.0]]))
    assert n.std[1] == pytest.approx(STD_FLOOR)
    assert n.normalize(torch.tensor([1.5, 5.0]))[1] == 0.0


def test_statistics_travel_in_the_state_dict():
    n = Normalizer((3,))
    n.set(np.ones(3), 2 * np.ones(3))
    m = Normalizer((3,))
    m.load_state_dict(n.state_dict())
    assert torch.equal(m.std, n.std)


def test_wrong_shape_or_nan_is_refused():
    n = Normalizer((3,))
    with pytest.raises(ValueError, match="shape"):
        n.set(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        n.set(np.array([0.0, np.nan, 0.0]), np.ones(3))

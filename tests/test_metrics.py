import numpy as np

from dexgen.eval.metrics import follow_error, median_ci


def test_median_ci_brackets_the_median_and_is_seeded():
    v = np.random.default_rng(0).normal(2.0, 1.0, 40)
    a = median_ci(v, seed=3)
    assert a["ci_low"] <= a["median"] <= a["ci_high"]
    assert a["median"] == np.median(v) and a["n"] == 40
    assert median_ci(v, seed=3) == a


def test_median_ci_of_constant_or_empty_values():
    assert median_ci(np.full(5, 20.0)) == {"median": 20.0, "ci_low": 20.0, "ci_high": 20.0, "n": 5}
    assert median_ci(np.array([np.nan]))["n"] == 0


def _straight_line(steps, hands, horizon, speed=0.01):
    tips = np.cumsum(np.full((steps + 1, hands, 4, 3), speed), axis=0)
    cmd = np.zeros((steps, hands, horizon, 4, 3))
    for k in range(horizon):
        cmd[:, :, k] = speed * (k + 1)
    return tips, cmd


def test_median_ratio_ci_brackets_the_ratio_narrows_with_more_episodes_and_is_seeded():
    from dexgen.eval.metrics import median_ratio_ci

    rng = np.random.default_rng(0)
    for n in (50, 2000):
        raw = rng.exponential(1.0, n)
        guided = 10.0 * raw * rng.uniform(0.5, 1.5, n)  # paired: the same episodes, held about 10x longer
        low, high = median_ratio_ci(guided, raw)
        assert low < np.median(guided) / np.median(raw) < high
        if n == 50:
            wide = high - low
    assert high - low < wide / 3
    assert median_ratio_ci(guided, raw, seed=1) == median_ratio_ci(guided, raw, seed=1)
    # unpaired lengths resample each on its own; a non-finite pair is dropped; a zero denominator gives inf
    low, high = median_ratio_ci(guided[:100], raw[:120])
    assert low < 10.0 < high
    with_nan = guided.copy()
    with_nan[0] = np.nan
    assert np.isfinite(median_ratio_ci(with_nan, raw)).all()
    assert median_ratio_ci(np.ones(5), np.zeros(5)) == (np.inf, np.inf)
    assert np.isnan(median_ratio_ci(np.array([np.nan]), np.array([1.0]))).all()


def test_follow_error_is_zero_when_the_command_is_executed():
    tips, cmd = _straight_line(10, 2, 3)
    np.testing.assert_allclose(follow_error(tips, cmd, np.array([10, 4])), 0.0, atol=1e-12)


def test_follow_error_measures_the_offset_and_only_while_held():
    tips, cmd = _straight_line(10, 2, 3)
    cmd[:, 0] += np.array([0.003, 0.004, 0.0])  # hand 0 was asked to go 5 mm further at every horizon step
    cmd[6:, 1] += 1.0  # hand 1's commands after it dropped (held 4 steps) must not count
    err = follow_error(tips, cmd, np.array([10, 4]))
    np.testing.assert_allclose(err, [0.005, 0.0], atol=1e-12)
    assert np.isnan(follow_error(tips, cmd, np.array([0, 4]))[0])

import math

import numpy as np
import pytest

from dexgen.eval.holding_curve import held_fraction, held_fractions, holding_curve_plot


def test_held_fraction_counts_the_episodes_still_holding():
    hold = [0.5, 1.0, 3.0, 10.0]
    assert held_fraction(hold, 0.0) == 1.0
    assert held_fraction(hold, 0.75) == 0.75
    assert held_fraction(hold, 1.0) == 0.75  # dropped at 1 s: still held at 1 s
    assert held_fraction(hold, 5.0) == 0.25
    assert held_fraction(hold, 10.0) == 0.25  # the horizon's cap counts as holding
    assert math.isnan(held_fraction([], 1.0))


def test_held_fractions_report_the_times_within_the_horizon_and_the_horizon():
    out = held_fractions({"raw": [0.5, 0.7], "guided": [4.0, 12.0]}, seconds=12.0)
    assert list(out["guided"]) == ["1", "2", "5", "10", "12"]
    assert out["raw"] == {"1": 0.0, "2": 0.0, "5": 0.0, "10": 0.0, "12": 0.0}
    assert out["guided"]["5"] == 0.5 and out["guided"]["12"] == 0.5


def test_the_share_still_holding_never_rises(tmp_path):
    hold = np.random.default_rng(0).uniform(0, 10, 50)
    shares = [held_fraction(hold, t) for t in np.linspace(0, 10, 101)]
    assert all(b <= a for a, b in zip(shares, shares[1:]))
    path = holding_curve_plot({"guided": list(hold), "none": []}, tmp_path / "sub" / "holding.png", seconds=10.0)
    assert path.exists() and path.stat().st_size > 1000


@pytest.mark.parametrize("t", [0.0, 2.5])
def test_a_single_episode_holds_until_it_drops(t):
    assert held_fraction([2.5], t) == 1.0

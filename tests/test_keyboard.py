import numpy as np
import pytest

from dexgen.teleop.commands import KinematicIntent
from dexgen.teleop.keyboard import KEY_DOWN, KEY_UP, KeyboardIntent


def test_keys_set_axis_direction_and_speed():
    k = KeyboardIntent(step=0.25)
    assert k.press("y") and k.axis == "+y"
    assert k.press(ord("R")) and k.axis == "-y"
    assert k.press(KEY_UP) and k.press("=") and k.omega == 0.5
    assert k.press(KEY_DOWN) and k.omega == 0.25
    assert k.press(" ") and k.omega == 0.0
    assert k.press("-") and k.omega == 0.0  # never negative: reverse the axis instead
    assert not k.press("q")
    assert k.status() == "rotate about -y at 0.00 rad/s"


def test_speed_is_capped():
    k = KeyboardIntent(step=1.0, max_omega=1.5)
    for _ in range(5):
        k.press(KEY_UP)
    assert k.omega == 1.5


def test_command_is_the_kinematic_intent_of_the_current_keys():
    k = KeyboardIntent()
    k.press("x")
    k.press("+")
    tips = np.random.default_rng(0).normal(0.05, 0.02, (2, 4, 3))
    np.testing.assert_array_equal(k.command(0, tips), KinematicIntent("+x", 0.25).command(0, tips))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="positive"):
        KeyboardIntent(step=0.0)

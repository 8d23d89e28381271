"""Interactive keyboard command source: keys choose the rotation axis and speed of a kinematic intent.

Keys (GLFW key codes, as MuJoCo's viewer passes them, or the same letters as text):

- ``X``, ``Y``, ``Z``: rotate about that palm axis (the sign is kept);  ``R``: reverse the direction;
- ``Up`` or ``=``: faster by ``step`` rad/s;  ``Down`` or ``-``: slower (not below 0);  ``Space``: stop.
"""

from __future__ import annotations

import numpy as np

from dexgen.teleop.commands import DT, HORIZON, CommandSource, KinematicIntent

KEY_UP, KEY_DOWN, KEY_SPACE = 265, 264, 32
"""GLFW key codes of the arrow keys and space."""


class KeyboardIntent(CommandSource):
    """A ``KinematicIntent`` whose axis and angular speed are changed by key presses (``press``)."""

    def __init__(self, *, axis: str = "+z", omega: float = 0.0, step: float = 0.25, max_omega: float = 2.0,
                 horizon: int = HORIZON, dt: float = DT) -> None:  # fmt: skip
        if step <= 0 or max_omega <= 0:
            raise ValueError(f"step and max_omega must be positive, got {step} and {max_omega}")
        self.axis, self.omega, self.step, self.max_omega = axis, float(omega), step, max_omega
        self.horizon, self.dt, self.name = horizon, dt, "keyboard"

    def press(self, key: int | str) -> bool:
        """Apply one key (a GLFW key code or a one-character string); returns whether it was a known key."""
        k = key if isinstance(key, str) else (chr(key) if 32 <= key < 127 else "")
        k = k.upper()
        if key == KEY_UP or k == "=" or k == "+":
            self.omega = min(self.omega + self.step, self.max_omega)
        elif key == KEY_DOWN or k == "-":
            self.omega = max(self.omega - self.step, 0.0)
        elif k == " " or key == KEY_SPACE:
            self.omega = 0.0
        elif k in ("X", "Y", "Z"):
            self.axis = self.axis[0] + k.lower()
        elif k == "R":
            self.axis = ("-" if self.axis[0] == "+" else "+") + self.axis[1]
        else:
            return False
        return True

    def status(self) -> str:
        """One line for the user: the current axis and speed."""
        return f"rotate about {self.axis} at {self.omega:.2f} rad/s"

    def command(self, t: int, tips: np.ndarray) -> np.ndarray:
        return KinematicIntent(self.axis, self.omega, horizon=self.horizon, dt=self.dt).command(t, tips)

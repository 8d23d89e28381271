"""One-line checks of config values, called from the configs' ``__post_init__``: the command line, the Python API
and the evaluation suites refuse a bad value with the same ValueError message, before any work starts."""

from __future__ import annotations

import math
from collections.abc import Iterable


def check_number(name: str, value, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
                 lt: float | None = None, optional: bool = False) -> None:  # fmt: skip
    """A ValueError "NAME must be finite and >= GE ..., got VALUE" unless ``value`` is a finite real number within
    the given bounds (``optional``: None passes too)."""
    if value is None and optional:
        return
    bounds = [(ge, ">=", lambda v, b: v >= b), (gt, ">", lambda v, b: v > b), (le, "<=", lambda v, b: v <= b),
              (lt, "<", lambda v, b: v < b)]  # fmt: skip
    wanted = " and ".join(["finite"] + [f"{op} {b:g}" for b, op, _ in bounds if b is not None])
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and all(ok(value, b) for b, _, ok in bounds if b is not None)):
        raise ValueError(f"{name} must be {wanted}, got {value}")


def check_int(name: str, value, *, ge: int, optional: bool = False) -> None:
    """A ValueError "NAME must be at least GE, got VALUE" unless ``value`` is an integer >= ``ge`` (``optional``:
    None passes too)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < ge:
        raise ValueError(f"{name} must be at least {ge}, got {value}")


def check_choice(name: str, value, choices: Iterable[str], *, optional: bool = False) -> None:
    """A ValueError "NAME must be one of A, B, got VALUE" unless ``value`` is one of ``choices``."""
    if value is None and optional:
        return
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def parse_floats(name: str, spec: str | None, *, ge: float | None = None) -> list[float]:
    """Comma-separated numbers (``spec``; None or empty: none), each finite (and >= ``ge``); a ValueError naming
    the bad entry otherwise."""
    out = []
    for item in filter(None, (s.strip() for s in str(spec or "").split(","))):
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not a number") from None
        check_number(f"{name} entry", value, ge=ge)
        out.append(value)
    return out


def parse_ints(name: str, spec: str | None) -> list[int]:
    """Comma-separated integers (``spec``; None or empty: none); a ValueError naming the bad entry otherwise."""
    out = []
    for item in filter(None, (s.strip() for s in str(spec or "").split(","))):
        try:
            out.append(int(item))
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not an integer") from None
    return out

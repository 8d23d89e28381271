"""Command-line lists of ``name=value`` pairs (reward overrides, object shares), parsed one way."""

import math
from collections.abc import Callable, Collection
from typing import TypeVar

V = TypeVar("V")


def parse_name_values(spec: str, *, allowed: Collection[str], convert: Callable[[str], V], what: str,
                      form: str) -> dict[str, V]:  # fmt: skip
    """``"name=value,..."`` as ``{name: convert(value)}``; blank entries are skipped.

    A ValueError names the first bad entry: a name not in ``allowed``, a name given twice, or a value that
    ``convert`` rejects (by raising ValueError). ``what`` names the list in the message ("reward override") and
    ``form`` the value it expects ("finite number")."""
    out: dict[str, V] = {}
    for item in (i.strip() for i in spec.split(",")):
        if not item:
            continue
        name, _, value = (part.strip() for part in item.partition("="))
        if name not in allowed:
            raise ValueError(f"unknown name {name!r} in {what} {item!r}; expected one of {', '.join(allowed)}")
        if name in out:
            raise ValueError(f"{what} for {name!r} given twice")
        try:
            out[name] = convert(value)
        except ValueError:
            raise ValueError(f"{what} {item!r} is not name=<{form}>") from None
    return out


def finite_float(text: str) -> float:
    """``text`` as a finite float; ValueError for anything else (including nan and inf)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not finite")
    return value


def non_negative_float(text: str) -> float:
    """``text`` as a finite float of at least 0; ValueError for anything else."""
    value = finite_float(text)
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


def positive_int(text: str) -> int:
    """``text`` as an integer of at least 1; ValueError for anything else."""
    value = int(text)
    if value < 1:
        raise ValueError(f"{text!r} is not positive")
    return value

import pytest

from dexgen.checks import check_choice, check_int, check_number, parse_floats, parse_ints
from dexgen.strict_json import dumps


def test_numbers_must_be_finite_and_within_their_bounds():
    check_number("x", 0.0, ge=0)
    check_number("x", None, optional=True)
    for value in (float("nan"), float("inf"), -1e-9, True, "1"):
        with pytest.raises(ValueError, match=r"^x must be finite and >= 0, got "):
            check_number("x", value, ge=0)
    with pytest.raises(ValueError, match=r"^x must be finite and > 0 and < 1, got 1"):
        check_number("x", 1, gt=0, lt=1)
    with pytest.raises(ValueError, match="^n must be at least 1, got 0$"):
        check_int("n", 0, ge=1)
    with pytest.raises(ValueError, match="^n must be at least 1, got 2.0$"):
        check_int("n", 2.0, ge=1)
    with pytest.raises(ValueError, match="^mode must be one of a, b, got 'c'$"):
        check_choice("mode", "c", ("a", "b"))


def test_lists_name_their_bad_entry():
    assert parse_floats("sweep", "0, 0.5,,1") == [0.0, 0.5, 1.0] and parse_ints("seeds", "1,2") == [1, 2]
    with pytest.raises(ValueError, match="sweep: 'x' is not a number"):
        parse_floats("sweep", "0,x")
    with pytest.raises(ValueError, match="sweep entry must be finite and >= 0, got -1.0"):
        parse_floats("sweep", "-1", ge=0)
    with pytest.raises(ValueError, match="seeds: '1.5' is not an integer"):
        parse_ints("seeds", "1,1.5")


def test_json_output_never_holds_nan_or_infinity():
    import json

    import numpy as np

    text = dumps({"a": float("nan"), "b": [np.float32("inf"), np.int64(3)], "c": np.array([1.0, np.nan])})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) == {
        "a": None, "b": [None, 3], "c": [1.0, None]}  # fmt: skip

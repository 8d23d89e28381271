import math
import re

import pytest

from dexgen.name_values import finite_float, non_negative_float, parse_name_values, positive_int


def parse(spec, convert=finite_float):
    return parse_name_values(spec, allowed=("drop", "rotate"), convert=convert, what="reward override",
                             form="finite number")  # fmt: skip


def test_pairs_are_parsed_and_blanks_skipped():
    assert parse(" drop = -300 , , rotate=2") == {"drop": -300.0, "rotate": 2.0}
    assert parse("") == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [("speed=1", "unknown name 'speed' in reward override 'speed=1'; expected one of drop, rotate"),
     ("drop=1,drop=2", "reward override for 'drop' given twice"),
     ("drop", "reward override 'drop' is not name=<finite number>"),
     ("drop=x", "reward override 'drop=x' is not name=<finite number>"),
     ("drop=nan", "is not name=<finite number>"), ("rotate=-inf", "is not name=<finite number>")],
)  # fmt: skip
def test_bad_entries_are_named(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(spec)


def test_converters():
    assert finite_float("1e-3") == pytest.approx(1e-3)
    assert positive_int("3") == 3
    for bad in ("0", "-1", "1.5", ""):
        with pytest.raises(ValueError):
            positive_int(bad)
    for bad in ("inf", "nan", "", "x"):
        with pytest.raises(ValueError):
            finite_float(bad)
    assert not math.isnan(finite_float("0"))
    assert non_negative_float("0") == 0.0 and non_negative_float("0.25") == 0.25
    for bad in ("-0.1", "inf", "nan", ""):
        with pytest.raises(ValueError):
            non_negative_float(bad)

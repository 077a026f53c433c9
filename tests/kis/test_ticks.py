from decimal import Decimal

import pytest

from kis.ticks import (
    PriceLimitError,
    Rounding,
    check_price_limits,
    is_on_tick,
    round_to_tick,
    tick_size,
)


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (1, 1), (1_999, 1), (2_000, 5), (4_999, 5), (5_000, 10), (19_999, 10),
        (20_000, 50), (49_999, 50), (50_000, 100), (199_999, 100), (200_000, 500),
        (499_999, 500), (500_000, 1_000), (1_234_000, 1_000),
    ],
)
def test_tick_table(price: int, tick: int) -> None:
    assert tick_size(price) == tick


@pytest.mark.parametrize(
    ("price", "rounding", "expected"),
    [
        (71_050, Rounding.DOWN, 71_000),
        (71_050, Rounding.UP, 71_100),
        (71_000, Rounding.DOWN, 71_000),
        (71_000, Rounding.UP, 71_000),
        (1_999.5, Rounding.UP, 2_000),
        (4_999, Rounding.UP, 5_000),
        (4_997, Rounding.DOWN, 4_995),
        (19_995, Rounding.UP, 20_000),
        (49_990, Rounding.UP, 50_000),
        (49_990, Rounding.DOWN, 49_950),
        (199_950, Rounding.UP, 200_000),
        (499_600, Rounding.UP, 500_000),
        (512_300, Rounding.DOWN, 512_000),
        (512_300, Rounding.UP, 513_000),
        (0.4, Rounding.DOWN, 1),
        ("71234.9", Rounding.DOWN, 71_200),
        (Decimal("1234.5"), Rounding.UP, 1_235),
    ],
)
def test_rounding(price: float | int | str | Decimal, rounding: Rounding, expected: int) -> None:
    assert round_to_tick(price, rounding) == expected
    assert is_on_tick(expected)


def test_etf_and_explicit_tick() -> None:
    assert round_to_tick(35_123, Rounding.DOWN, etf=True) == 35_120
    assert round_to_tick(35_123, Rounding.UP, tick=25) == 35_125


def test_non_positive_price_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        round_to_tick(0, Rounding.DOWN)


def test_price_limits() -> None:
    check_price_limits(70_000, lower=50_000, upper=90_000)
    with pytest.raises(PriceLimitError, match="upper limit 90,000"):
        check_price_limits(90_100, lower=50_000, upper=90_000)
    with pytest.raises(PriceLimitError, match="lower limit"):
        check_price_limits(49_900, lower=50_000, upper=90_000)

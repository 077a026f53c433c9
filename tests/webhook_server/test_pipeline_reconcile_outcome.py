"""A found order that KIS then rejected or cancelled in full is not an accepted order."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kis.models import Execution, Side
from webhook_server.reconcile import ended_unfilled


def execution(*, filled: int = 0, rejected: int = 0, cancelled: bool = False) -> Execution:
    return Execution(
        order_no="0000000007", branch="91252", symbol="005930", side=Side.BUY,
        order_qty=3, order_price=0, order_time="091500", filled_qty=filled,
        avg_price=Decimal(0), remaining_qty=3 - filled - rejected, rejected_qty=rejected,
        cancelled=cancelled,
    )


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (execution(), None),  # live, nothing traded yet
        (execution(filled=3), None),
        (execution(filled=1, rejected=2), None),  # partly filled: it traded
        (execution(rejected=3), "rejected"),
        (execution(cancelled=True), "cancelled"),
        (execution(filled=2, cancelled=True), None),
    ],
)
def test_ended_unfilled(row: Execution, expected: str | None) -> None:
    assert ended_unfilled(row) == expected

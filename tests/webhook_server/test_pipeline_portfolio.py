"""SPEC section 15 on the order path, over real sockets to the simulator: risk limits as
a guard before KIS (per order, per day, atomically under a burst, given back when an
order is not placed) and after-hours reservation orders with their result reported."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from kis.env import KST, Environment
from kis.markets import Krx, KrxHours, Markets, Us
from kis.sim import demo_account
from kis.sim.accounts import demo_real_account
from kis.sim.market import Instrument
from storage.options import LimitName
from storage.portfolio_notices import ReservationEvent, card_from_payload
from storage.portfolio_records import ConfirmationStatus, DecideOutcome, ReservationStatus
from storage.records import AlertStatus
from webhook_server.market_hours import MarketClock
from webhook_server.reservation_results import ReservationResults

from .test_pipeline_e2e import BACKENDS, Stack, add_user, stack

BURST = 10


def _burst_symbols(s: Stack) -> list[str]:
    """Ten instruments at 100,000 KRW each (the simulator's own nine cost other amounts)."""
    symbols = [f"9000{n:02d}" for n in range(BURST)]
    for symbol in symbols:
        s.sim.market.add(Instrument(symbol, f"테스트{symbol}", 100_000))
    return symbols


async def _burst(s: Stack, symbols: list[str]) -> list[str]:
    answers = await asyncio.gather(*(
        s.post({"ticker": symbol, "action": "buy", "quantity": "1"}) for symbol in symbols
    ))
    assert all(status == 200 for status, _ in answers)
    await s.settle()
    return [str(answer["alert_id"]) for _, answer in answers]


async def _refusals(s: Stack) -> list[dict[str, object]]:
    return [n for n in await s.outbox() if n["kind"] == "order_refused"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_ten_alerts_at_once_never_pass_the_orders_per_day_cap(
    tmp_path: Path, backend: str
) -> None:
    async with stack(tmp_path, backend=backend) as s:
        symbols = _burst_symbols(s)
        await s.storage.options.set_limit(s.user.id, LimitName.ORDERS, "KRW", Decimal(4))
        await _burst(s, symbols)
        assert len(s.sim.orders) == 4
        refusals = await _refusals(s)
        assert len(refusals) == BURST - 4
        assert {n["reason_key"] for n in refusals} == {"limit_orders"}
        assert refusals[0]["reason_params"] == {"used": "4", "orders": "4", "market": "KRX"}
        day = datetime.now(UTC).astimezone(KST).date().isoformat()
        used = await s.storage.limits.usage(s.user.id, "KRX", day)
        assert used.orders == 4  # (amounts are counted when an amount cap is set)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_ten_alerts_at_once_never_pass_the_daily_amount_cap(
    tmp_path: Path, backend: str
) -> None:
    async with stack(tmp_path, backend=backend) as s:
        symbols = _burst_symbols(s)
        await s.storage.options.set_limit(s.user.id, LimitName.DAY, "KRW", Decimal(450_000))
        await _burst(s, symbols)
        assert len(s.sim.orders) == 4  # 4 × 100,000 fits under 450,000; a fifth does not
        refusals = await _refusals(s)
        assert {n["reason_key"] for n in refusals} == {"limit_day"}
        params = refusals[-1]["reason_params"]
        assert isinstance(params, dict)
        assert (params["amount"], params["bought"], params["limit"]) == (
            "100000", "400000", "450000")


async def test_per_order_limit_refuses_before_kis_and_allows_under_the_cap(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        await s.storage.options.set_limit(s.user.id, LimitName.ORDER, "KRW", Decimal(200_000))
        status, answer = await s.post({"ticker": "005930", "action": "buy", "quantity": "3"})
        assert status == 200
        await s.settle()
        assert s.sim.orders == []
        alert = await s.alert(answer["alert_id"])
        assert alert.status is AlertStatus.REFUSED
        assert alert.reason.startswith("the order's amount 213000 KRW (3 × 71000)")
        await s.post({"ticker": "005930", "action": "buy", "quantity": "2"})
        await s.settle()
        assert [o.qty for o in s.sim.orders] == [2]


async def test_a_sell_is_capped_per_order_but_not_counted_as_bought(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.storage.options.set_limit(s.user.id, LimitName.ORDER, "KRW", Decimal(500_000))
        await s.storage.options.set_limit(s.user.id, LimitName.DAY, "KRW", Decimal(100_000))
        await s.post({"ticker": "005930", "action": "sell", "quantity": "8"})  # 568,000
        await s.post({"ticker": "005930", "action": "sell", "quantity": "5"})  # 355,000
        await s.settle()
        assert [(o.side.value, o.qty) for o in s.sim.orders] == [("01", 5)]


async def test_the_day_share_is_given_back_when_kis_refuses_the_order(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.storage.options.set_limit(s.user.id, LimitName.DAY, "KRW", Decimal(150_000))
        s.sim.faults.add("order", "APBK0952")  # KIS refuses the first order
        buy = {"ticker": "005930", "action": "buy", "quantity": "2"}  # 142,000
        await s.post(buy)
        await s.settle()
        await s.post({**buy, "id": "second"})
        await s.settle()
        # Without the share given back, 142,000 + 142,000 would pass the 150,000 cap.
        assert len(s.sim.orders) == 1
        day = datetime.now(UTC).astimezone(KST).date().isoformat()
        used = await s.storage.limits.usage(s.user.id, "KRX", day)
        assert used.orders == 1 and used.bought == 142_000


async def test_us_orders_have_dollar_limits_at_the_marketable_price(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.storage.options.set_limit(s.user.id, LimitName.ORDER, "USD", Decimal(1000))
        await s.storage.options.set_limit(s.user.id, LimitName.ORDER, "KRW", Decimal(1))
        status, answer = await s.post({"ticker": "NASDAQ:AAPL", "action": "buy",
                                       "quantity": "10"})
        await s.settle()
        alert = await s.alert(answer["alert_id"])
        # A market buy goes as a limit at last × 1.005 = 191.07; 10 × 191.07 > $1,000.
        assert alert.reason.startswith("the order's amount 1910.70 USD (10 × 191.07)")
        await s.post({"ticker": "NASDAQ:AAPL", "action": "buy", "quantity": "5"})
        await s.settle()
        assert [(o.symbol, o.qty) for o in s.sim.us_orders] == [("AAPL", 5)]


# --- after-hours reservations ------------------------------------------------------------


class _ClosedThrough:
    """A KRX calendar closed up to and including `last` (the test runs at any hour)."""

    def __init__(self, last: date) -> None:
        self._last = last

    def get(self, key: date) -> str | None:
        return "closed for the test" if key <= self._last else None


class _Evening(Krx):
    """KRX closed now, KIS's reservation window open (or not) whatever the wall clock."""

    def __init__(self, window: bool) -> None:
        today = datetime.now(UTC).astimezone(KST).date()
        super().__init__(KrxHours(calendar=_ClosedThrough(today + timedelta(days=1))))
        self._window = window

    def in_reservation_window(self, now: datetime) -> bool:
        return self._window


def _after_hours(window: bool = True) -> Markets:
    return Markets(_Evening(window), Us())


async def _reserving_user(s: Stack, real: bool = True) -> int:
    account = demo_real_account() if real else demo_account()
    if real:
        s.sim.add_account(account)
    user = await add_user(s.storage, account, 2)
    await s.storage.options.set_afterhours(user.id, True)
    return user.id


async def test_an_alert_outside_hours_becomes_a_reservation_and_its_result_is_told_once(
    tmp_path: Path,
) -> None:
    markets = _after_hours()
    async with stack(tmp_path, market=MarketClock(enforce=True), markets=markets) as s:
        user_id = await _reserving_user(s)
        token = await s.storage.users.webhook_token(user_id)
        status, answer = await s.post({"ticker": "005930", "action": "buy", "quantity": "2"},
                                      token)
        await s.settle()

        assert status == 200 and s.sim.orders == []  # no ordinary order outside hours
        (entered,) = s.sim.reservations.items
        assert entered.body["ORD_DVSN_CD"] == "01" and "ORD_DVSN" not in entered.body
        assert [r.tr_id for r in s.sim.requests if r.endpoint == "resv"] == ["CTSC0008U"]
        (record,) = await s.storage.reserved.open_for_user(user_id)
        assert record.status is ReservationStatus.RESERVED and record.seq == entered.seq
        placed = card_from_payload((await s.outbox())[-1])
        assert getattr(placed, "event", None) is ReservationEvent.PLACED
        assert (await s.alert(answer["alert_id"])).status is AlertStatus.DONE

        s.sim.process_reservations()  # the open: KIS sends it as an order, silently
        await s.sim.wait_order_done(s.sim.orders[0].odno)
        later = datetime.now(UTC) + timedelta(days=5)
        results = ReservationResults(s.storage, s.kis, markets, lambda m: None,
                                     clock=lambda: later)
        assert await results.run_once() == 1
        assert await results.run_once() == 0  # told once
        told = card_from_payload((await s.outbox())[-1])
        assert getattr(told, "event", None) is ReservationEvent.EXECUTED
        assert getattr(told, "order_no", "") == s.sim.orders[0].odno
        assert getattr(told, "filled", 0) == 2
        done = await s.storage.reserved.get(record.id)
        assert done is not None and done.status is ReservationStatus.EXECUTED


async def test_no_reservation_outside_kis_entry_window(tmp_path: Path) -> None:
    markets = _after_hours(window=False)
    async with stack(tmp_path, market=MarketClock(enforce=True), markets=markets) as s:
        user_id = await _reserving_user(s)
        token = await s.storage.users.webhook_token(user_id)
        _, answer = await s.post({"ticker": "005930", "action": "buy", "quantity": "2"}, token)
        await s.settle()
        assert s.sim.reservations.items == []
        alert = await s.alert(answer["alert_id"])
        assert alert.status is AlertStatus.REFUSED and "closed" in alert.reason


async def test_reservations_are_real_only(tmp_path: Path) -> None:
    async with stack(tmp_path, market=MarketClock(enforce=True),
                     markets=_after_hours()) as s:
        user_id = await _reserving_user(s, real=False)  # the option set behind the bot
        token = await s.storage.users.webhook_token(user_id)
        _, answer = await s.post({"ticker": "005930", "action": "buy", "quantity": "1"}, token)
        await s.settle()
        assert s.sim.reservations.items == []
        assert (await s.alert(answer["alert_id"])).status is AlertStatus.REFUSED
        assert Environment.PAPER not in {r.env for r in s.sim.requests if r.endpoint == "resv"}


async def test_a_lost_reservation_answer_is_settled_from_kis_list(tmp_path: Path) -> None:
    markets = _after_hours()
    async with stack(tmp_path, market=MarketClock(enforce=True), markets=markets) as s:
        user_id = await _reserving_user(s)
        token = await s.storage.users.webhook_token(user_id)
        s.sim.faults.add("resv", "timeout_after_accept", then="drop")  # entered, answer lost
        s.sim.faults.add("resv", "drop")  # never reaches KIS: no answer either
        await s.post({"ticker": "005930", "action": "buy", "quantity": "2"}, token)
        await s.post({"ticker": "035720", "action": "buy", "quantity": "1"}, token)
        await s.settle()
        records = await s.storage.reserved.open_for_user(user_id)
        assert [r.status for r in records] == [ReservationStatus.UNKNOWN] * 2
        assert len(s.sim.reservations.items) == 1  # one reached KIS; neither is re-sent

        results = ReservationResults(s.storage, s.kis, markets, lambda m: None,
                                     clock=lambda: datetime.now(UTC) + timedelta(days=5))
        assert await results.run_once() == 1  # the one KIS never had: told it failed
        found_record, missing_record = [await s.storage.reserved.get(r.id) for r in records]
        assert found_record is not None and found_record.status is ReservationStatus.RESERVED
        assert found_record.seq == s.sim.reservations.items[0].seq
        assert missing_record is not None and missing_record.status is ReservationStatus.FAILED
        failed = card_from_payload((await s.outbox())[-1])
        assert getattr(failed, "event", None) is ReservationEvent.FAILED
        s.sim.process_reservations()
        await s.sim.wait_order_done(s.sim.orders[0].odno)
        assert await results.run_once() == 1  # and the found one's result, once
        assert await results.run_once() == 0
        assert len(s.sim.reservations.items) == 1 and len(s.sim.orders) == 1


async def test_a_confirmed_alert_is_placed_once_even_after_a_restart(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.storage.options.set_confirm(s.user.id, 60)
        _, answer = await s.post({"ticker": "005930", "action": "buy", "quantity": "1"})
        await s.settle()
        alert_id = int(answer["alert_id"])
        assert (await s.alert(alert_id)).status is AlertStatus.AWAITING
        assert s.sim.orders == []
        asked = await s.storage.confirmations.by_alert(alert_id)
        assert asked is not None
        decided = await s.storage.confirmations.decide(
            asked.id, s.user.id, ConfirmationStatus.CONFIRMED
        )
        assert decided.outcome is DecideOutcome.DECIDED
        # The instance that was to be woken died: a restart finds the confirmed alert.
        await s.pipeline.close()
        assert s.make_pipeline is not None
        s.pipeline = s.make_pipeline()
        report = await s.pipeline.resume()
        assert report.alerts == 1
        s.pipeline.run_stored(alert_id)  # a late wake-up as well
        s.pipeline.run_stored(alert_id)
        await s.settle()
        assert [o.qty for o in s.sim.orders] == [1]
        assert (await s.alert(alert_id)).status is AlertStatus.DONE

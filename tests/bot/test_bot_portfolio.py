"""SPEC section 15 through the chat, end to end: aiogram's real polling against the Bot
API stand-in, the pipeline behind the real hook endpoint, the KIS simulator and SQLite.
Every figure is checked against what the simulator holds or received."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.confirm_expiry import ExpirySweeper
from bot.digest import DigestJob
from bot.portfolio_keyboards import Approval, CancelOrder, CloseChoice
from bot.standin import SimUser
from kis.env import Environment
from kis.markets import default_markets
from kis.sim import DEMO_APP_KEY, KisSimulator
from kis.sim.accounts import DEMO_REAL_APP_KEY
from kis.sim.codes import KisRefusal
from kis.tokenstore import CredentialKind
from storage.portfolio_records import ConfirmationStatus
from storage.records import AlertStatus

from .test_bot_e2e import CODE, Stack, register, running_stack, say

WAIT = 10.0


class OffsetClock:
    """Wall time plus an offset the test moves (confirm-mode expiry)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class World:
    stack: Stack
    clock: OffsetClock

    @property
    def sim(self) -> KisSimulator:
        return self.stack.sim

    async def user_id(self, telegram_id: int) -> int:
        user = await self.stack.storage.users.by_telegram_id(telegram_id)
        assert user is not None
        return user.id

    async def post(self, user: SimUser, body: dict[str, object]) -> dict[str, object]:
        token = await self.stack.storage.users.webhook_token(await self.user_id(user.id))
        async with aiohttp.ClientSession() as session, session.post(
            f"{self.stack.web_url}/hook/{token}", data=json.dumps(body)
        ) as response:
            assert response.status == 200
            answer: dict[str, object] = await response.json()
            return answer

    async def idle(self) -> None:
        assert self.stack.pipeline is not None
        await asyncio.wait_for(self.stack.pipeline.wait_idle(), WAIT)

    def orders_sent(self, symbol: str | None = None) -> list[dict[str, str]]:
        return [o.body for o in self.sim.orders if symbol is None or o.symbol == symbol]

    def calls(self, endpoint: str) -> int:
        return sum(r.endpoint == endpoint for r in self.sim.requests)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = OffsetClock()
    # Two holdings a page in both environments: /balance must follow the pages.
    sim = KisSimulator(balance_page_rows={Environment.PAPER: 2, Environment.REAL: 2},
                       rate_limits={Environment.PAPER: 1000, Environment.REAL: 1000})
    async with running_stack(tmp_path, clock=clock, sim=sim) as stack:
        yield World(stack, clock)


async def _code(user: SimUser, command: str, ask: str) -> str:
    message = await say(user, command, "moahook code")
    await user.wait_for_bot_message(ask)
    found = CODE.search(message.text)
    assert found is not None
    return found.group(1)


async def _go_real(world: World, user: SimUser) -> None:
    await register(world.stack, user, real=True)
    code = await _code(user, "/real", "Switch to real trading: send the 6-digit code")
    await say(user, code, "Switched to real trading")


# --- /balance -----------------------------------------------------------------------------


async def test_balance_shows_cash_holdings_and_pl_from_every_page(world: World) -> None:
    user = world.stack.standin.user(9101, "Bo", language_code="en")
    await register(world.stack, user)
    account = world.sim.account(DEMO_APP_KEY)
    account.holdings.update({"000660": 3, "035720": 7})  # three holdings: two pages
    world.sim.set_price("005930", 72_000)
    world.sim.set_us_price("AAPL", "200.00")
    before = world.calls("balance")

    answer = await say(user, "/balance", "Balance (paper trading)")

    text = answer.text
    assert "Cash 10,000,000 KRW · buying power (D+2) 10,000,000 KRW" in text
    assert "삼성전자 (005930) 10 sh · avg 71,000 KRW · now 72,000 KRW" in text
    assert "value 720,000 KRW · P&L +10,000 KRW (+1.41%)" in text
    assert "SK하이닉스 (000660) 3 sh · avg 185,000 KRW · now 185,000 KRW" in text
    assert "카카오 (035720) 7 sh" in text
    total = 720_000 + 3 * 185_000 + 7 * 42_000
    assert f"Total: value {total:,} KRW · P&L +10,000 KRW" in text
    assert "APPLE INC (NASDAQ:AAPL) 5 sh · avg $190.12 · now $200.00" in text
    assert "value $1,000.00 · P&L +$49.40 (+5.20%)" in text
    assert "Buying power $10,000.00" in text
    # Three holdings at two a page: KIS was asked for both pages.
    assert world.calls("balance") - before == 2
    assert [r.tr_cont for r in world.sim.requests if r.endpoint == "balance"][-2:] == ["", "N"]


async def test_balance_without_keys_says_so(world: World) -> None:
    user = world.stack.standin.user(9102, "Kim", language_code="en")
    answer = await say(user, "/balance", "keys")
    assert "No paper trading keys that passed the checks" in answer.text
    assert world.calls("balance") == 0


async def test_balance_reports_kis_failure_per_market(world: World) -> None:
    user = world.stack.standin.user(9103, "Lee", language_code="en")
    await register(world.stack, user)
    world.sim.faults.add("balance", "OPSQ0001", count=5)
    answer = await say(user, "/balance", "Balance")
    assert "KIS could not be asked ([OPSQ0001]" in answer.text
    assert "APPLE INC (NASDAQ:AAPL) 5 sh" in answer.text  # the US part still shows


# --- /pnl ---------------------------------------------------------------------------------


async def _trade(world: World, user: SimUser) -> None:
    """Buy 2 at 71,000, then sell 3 at 73,000 (average purchase price 71,000)."""
    mark = user.mark()
    await world.post(user, {"ticker": "005930", "action": "buy", "quantity": "2"})
    await user.wait_for_bot_message("Filled", after=mark, timeout=WAIT)
    world.sim.set_price("005930", 73_000)
    mark = user.mark()
    await world.post(user, {"ticker": "005930", "action": "sell", "quantity": "3"})
    await user.wait_for_bot_message("sell 3 sh @", after=mark, timeout=WAIT)
    await world.idle()


async def test_pnl_in_paper_is_computed_from_fills_and_average_prices(world: World) -> None:
    user = world.stack.standin.user(9111, "Park", language_code="en")
    await register(world.stack, user)
    await _trade(world, user)

    answer = await say(user, "/pnl", "Today's fills")

    text = answer.text
    assert "삼성전자 (005930) buy 2 sh @ 71,000 KRW" in text
    assert "삼성전자 (005930) sell 3 sh @ 73,000 KRW" in text
    assert "Realised P&L (computed from fill and average purchase prices): +6,000 KRW" in text
    assert "Paper trading has no realised-P&L inquiry at KIS" in text
    assert world.calls("rlz_pl") == 0  # no paper TR exists


async def test_pnl_in_real_uses_kis_realised_pnl(world: World) -> None:
    user = world.stack.standin.user(9112, "Choi", language_code="en")
    await _go_real(world, user)
    await _trade(world, user)

    answer = await say(user, "/pnl", "Today's fills")

    assert "Realised P&L (KIS): +6,000 KRW" in answer.text
    assert "sell 3 sh @ 73,000 KRW" in answer.text
    assert [r.tr_id for r in world.sim.requests if r.endpoint == "rlz_pl"] == ["TTTC8494R"]
    assert world.sim.account(DEMO_REAL_APP_KEY).realised  # the figure is the simulator's


# --- /limits ------------------------------------------------------------------------------


async def test_limits_lowering_is_immediate_raising_and_removing_need_the_code(
    world: World,
) -> None:
    user = world.stack.standin.user(9121, "Yoon", language_code="en")
    await say(user, "/start", "moahook")
    user_id = await world.user_id(9121)

    async def order_limit() -> object:
        return (await world.stack.storage.options.get(user_id)).limits.order_krw

    shown = await say(user, "/limits", "Risk limits")
    assert "Most per order: none · none" in shown.text
    await say(user, "/limits order 1000000", "Per-order limit set to 1,000,000 KRW.")
    code = await _code(user, "/limits order 2000000", "Raise or remove a limit: send")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    await say(user, wrong, "Wrong code")
    assert await order_limit() == 1_000_000
    await say(user, code, "Per-order limit set to 2,000,000 KRW.")
    assert await order_limit() == 2_000_000
    await say(user, "/limits order 500000", "Per-order limit set to 500,000 KRW.")
    code = await _code(user, "/limits off order", "Raise or remove a limit")
    await say(user, code, "Per-order limit removed.")
    assert await order_limit() is None
    await say(user, "/limits orders 5", "Orders-per-day limit set to 5 orders.")
    await say(user, "/limits day 300.50 usd", "Daily buying limit set to $300.50.")
    shown = await say(user, "/limits", "Risk limits")
    assert "Most bought per day: none · $300.50" in shown.text
    assert "Most orders per day: 5 orders" in shown.text
    # Clear errors that change nothing.
    await say(user, "/limits order abc", "'abc' is not a limit")
    await say(user, "/limits weekly 5", "'weekly' is not a limit: use order, day or orders")
    await say(user, "/limits orders 5 usd", "has no currency")
    await say(user, "/limits day 10.5", "'10.5' is not a limit")
    assert (await world.stack.storage.options.get(user_id)).limits.orders == 5


async def test_order_limit_refuses_before_kis_and_allows_under_the_cap(world: World) -> None:
    user = world.stack.standin.user(9122, "Han", language_code="en")
    await register(world.stack, user)
    await say(user, "/limits order 200000", "set to 200,000 KRW")
    mark = user.mark()
    await world.post(user, {"ticker": "005930", "action": "buy", "quantity": "3"})
    refused = await user.wait_for_bot_message("Order refused", after=mark, timeout=WAIT)
    assert ("the order's amount 213,000 KRW (3 sh × 71,000 KRW) is over your per-order "
            "limit of 200,000 KRW") in refused.text
    await world.idle()
    assert world.orders_sent() == []  # refused before KIS was asked for the order
    await world.post(user, {"ticker": "005930", "action": "buy", "quantity": "2"})
    await user.wait_for_bot_message("Order accepted", after=mark, timeout=WAIT)
    assert [o["ORD_QTY"] for o in world.orders_sent()] == ["2"]


# --- /confirm -----------------------------------------------------------------------------


async def _question(world: World, user: SimUser, body: dict[str, object]) -> int:
    """Post an alert in confirm mode; the confirmation id once the question is in the chat."""
    mark = user.mark()
    answer = await world.post(user, body)
    assert answer["status"] == "accepted"  # TradingView still gets its answer at once
    await user.wait_for_bot_message("Place this order?", after=mark, timeout=WAIT)
    asked = await world.stack.storage.confirmations.by_alert(int(str(answer["alert_id"])))
    assert asked is not None
    return asked.id


async def _press_twice(world: World, user: SimUser, data: str) -> list[str]:
    """Two presses in a row, both queued before the bot handles the first; what each
    press was answered."""
    presses = [await user.press(data), await user.press(data)]
    answered = world.stack.standin.answered_callbacks
    await world.stack.standin.wait_until(lambda: set(presses) <= set(answered), WAIT)
    return [str(answered[press].get("text", "")) for press in presses]


async def test_confirm_places_one_order_per_press_even_pressed_twice(world: World) -> None:
    user = world.stack.standin.user(9131, "Jang", language_code="en")
    await register(world.stack, user)
    await say(user, "/confirm on 60", "Confirm mode on")
    confirmation = await _question(world, user, {"ticker": "005930", "action": "buy",
                                                 "quantity": "2"})
    card = user.bot_messages()[-1]
    assert "삼성전자" not in card.text and "005930 buy 2 sh at market" in card.text
    assert card.buttons == (("✅ Place", "❌ Skip"),)
    assert world.orders_sent() == []  # nothing ordered before the press
    world.sim.set_price("005930", 72_000)  # sized again at the press: fresh figures

    answers = await _press_twice(world, user, Approval(id=confirmation, place=True).pack())
    await user.wait_for_bot_message("Order accepted", timeout=WAIT)
    await world.idle()

    assert [o["ORD_QTY"] for o in world.orders_sent()] == ["2"]
    assert answers == ["✅ Placing: sized again with the current price and holdings.",
                       "Already decided."]
    settled = next(m for m in user.bot_messages() if m.id == card.id)
    assert settled.buttons == () and "✅ Placing" in settled.text

    skip = await _question(world, user, {"ticker": "000660", "action": "buy",
                                         "quantity": "1"})
    await _press_twice(world, user, Approval(id=skip, place=False).pack())
    await world.idle()
    assert len(world.orders_sent()) == 1
    record = await world.stack.storage.confirmations.get(skip)
    assert record is not None and record.status is ConfirmationStatus.SKIPPED
    alert = await world.stack.storage.alerts.get(record.alert_id)
    assert alert is not None and alert.status is AlertStatus.REFUSED


async def test_confirm_expiry_is_reported_once_and_nothing_is_placed_after(
    world: World,
) -> None:
    user = world.stack.standin.user(9132, "Seo", language_code="en")
    await register(world.stack, user)
    await say(user, "/confirm on 10", "expires after 10 s")
    sweeper = ExpirySweeper(world.stack.storage, world.stack.notifier.wake, clock=world.clock)
    late = await _question(world, user, {"ticker": "005930", "action": "buy",
                                         "quantity": "1"})
    swept = await _question(world, user, {"ticker": "000660", "action": "buy",
                                          "quantity": "1"})
    world.clock.offset = timedelta(seconds=11)

    # A press after the time is up finds it expired: no order, and the expiry is told.
    mark = user.mark()
    await user.press(Approval(id=late, place=True).pack())
    await user.wait_for_bot_message("Not confirmed in time", after=mark, timeout=WAIT)
    # The other one is expired by the sweeper; its buttons come off, the expiry is told.
    await sweeper.step()
    await user.wait_for_bot_message(
        lambda m: "Not confirmed in time" in m.text and "000660" in m.text, after=mark,
        timeout=WAIT,
    )
    await sweeper.step()  # a second pass reports nothing again
    await world.idle()
    await world.stack.standin.wait_until(
        lambda: all(m.buttons == () for m in user.bot_messages()
                    if "Place this order?" in m.text or "Not confirmed" in m.text), WAIT
    )

    assert world.orders_sent() == []
    texts = [m.text for m in user.bot_messages()]
    assert sum("Not confirmed in time" in text for text in texts) == 2
    for confirmation in (late, swept):
        record = await world.stack.storage.confirmations.get(confirmation)
        assert record is not None and record.status is ConfirmationStatus.EXPIRED


# --- /digest ------------------------------------------------------------------------------


async def test_digest_sums_up_the_market_day_once(world: World) -> None:
    user = world.stack.standin.user(9141, "Moon", language_code="en")
    await register(world.stack, user)
    await say(user, "/digest on", "Daily summary on")
    await _trade(world, user)
    mark = user.mark()
    await world.post(user, {"ticker": "000660", "action": "sell", "quantity": "1"})
    await user.wait_for_bot_message("Order refused", after=mark, timeout=WAIT)
    await world.idle()
    krx = default_markets().get("KRX")
    job = DigestJob(world.stack.storage, world.stack.kis, default_markets(),
                    world.stack.notifier.wake)
    now = datetime.now(UTC)
    day = krx.hours.trading_day(now)

    assert await job.send_day(krx, day, now) == 1
    digest = await user.wait_for_bot_message("Korea (KRX) day summary", timeout=WAIT)

    text = digest.text
    assert f"day summary {day.isoformat()} (paper trading)" in text
    assert "Orders: 2 (filled 2)" in text
    assert "삼성전자 (005930) buy 2 sh @ 71,000 KRW" in text
    assert "삼성전자 (005930) sell 3 sh @ 73,000 KRW" in text
    assert "Bought 142,000 KRW · sold 219,000 KRW" in text
    assert "Refused alerts: 1 (cannot sell 000660: no shares held)" in text
    assert "Realised P&L (computed): +6,000 KRW" in text
    # Once per user and market day, however often the job runs.
    assert await job.send_day(krx, day, now) == 0
    assert sum("day summary" in m.text for m in user.bot_messages()) == 1


# --- /orders: cancel, /close --------------------------------------------------------------


async def test_cancel_of_an_open_order_reaches_kis_once_when_pressed_twice(
    world: World,
) -> None:
    user = world.stack.standin.user(9151, "Kang", language_code="en")
    await register(world.stack, user)
    mark = user.mark()
    await world.post(user, {"ticker": "005930", "action": "buy", "quantity": "3",
                            "order_type": "limit", "price": "60000"})
    await user.wait_for_bot_message("Order accepted", after=mark, timeout=WAIT)
    await world.idle()
    order = (await world.stack.storage.orders.recent(await world.user_id(9151), 1))[0]

    shown = await say(user, "/orders", "Last 1 orders")
    assert shown.text.splitlines()[1].startswith("⏳ ")
    assert shown.buttons == ((f"Cancel #{order.id} 005930",),)

    mark = user.mark()
    await _press_twice(world, user, CancelOrder(order_id=order.id).pack())
    done = await user.wait_for_bot_message("KIS took the cancel", after=mark, timeout=WAIT)
    assert f"#{order.id} 005930, 3 sh left open" in done.text
    await user.wait_for_bot_message("was sent already", after=mark, timeout=WAIT)
    assert world.calls("rvsecncl") == 1
    cancelled = world.sim.order(order.order_no or "")
    assert cancelled.status.value == "cancelled"
    again = await say(user, "/orders", "Last 1 orders")
    assert again.text.splitlines()[1].startswith("🗑 ") and again.buttons == ()


async def test_cancel_of_an_open_us_order_names_what_is_left(world: World) -> None:
    user = world.stack.standin.user(9154, "Gu", language_code="en")
    await register(world.stack, user)
    mark = user.mark()
    await world.post(user, {"ticker": "NASDAQ:AAPL", "action": "buy", "quantity": "2",
                            "order_type": "limit", "price": "150"})
    await user.wait_for_bot_message("Order accepted", after=mark, timeout=WAIT)
    await world.idle()
    order = (await world.stack.storage.orders.recent(await world.user_id(9154), 1))[0]
    shown = await say(user, "/orders", "Last 1 orders")
    assert shown.buttons == ((f"Cancel #{order.id} AAPL",),)
    mark = user.mark()
    await _press_twice(world, user, CancelOrder(order_id=order.id).pack())
    await user.wait_for_bot_message("KIS took the cancel", after=mark, timeout=WAIT)
    cancels = [r for r in world.sim.requests if r.endpoint == "ovrs_rvsecncl"]
    assert [r.tr_id for r in cancels] == ["VTTT1004U"]
    assert world.sim.us_orders[0].cancelled_qty == 2


async def test_close_sells_the_holding_once_when_pressed_twice(world: World) -> None:
    user = world.stack.standin.user(9152, "Shin", language_code="en")
    await register(world.stack, user)
    await say(user, "/pause", "Paused")  # /close is the way out: it works while paused
    asked = await say(user, "/close 005930", "Sell the whole holding at market?")
    assert "삼성전자" not in asked.text and "005930 10 sh (10 sh can be sold)" in asked.text
    sell = next(
        data for data in _close_buttons(world, asked.id) if CloseChoice.unpack(data).sell
    )

    mark = user.mark()
    answers = await _press_twice(world, user, sell)
    await user.wait_for_bot_message("Order accepted", after=mark, timeout=WAIT)
    await world.idle()

    assert answers == ["", ""]
    await user.wait_for_bot_message("Sent already.", after=mark)
    sells = world.orders_sent("005930")
    assert [(o["ORD_QTY"], o["SLL_TYPE"]) for o in sells] == [("10", "01")]
    await world.sim.wait_order_done(world.sim.orders[0].odno)
    assert world.sim.account(DEMO_APP_KEY).holdings.get("005930", 0) == 0


async def test_close_all_sells_every_market_once(world: World) -> None:
    user = world.stack.standin.user(9153, "Oh", language_code="en")
    await register(world.stack, user)
    asked = await say(user, "/close all", "Sell the whole holding at market?")
    assert "삼성전자 (005930) 10 sh (10 sh can be sold)" in asked.text
    assert "APPLE INC (NASDAQ:AAPL) 5 sh (5 sh can be sold)" in asked.text
    sell = next(
        data for data in _close_buttons(world, asked.id) if CloseChoice.unpack(data).sell
    )
    await _press_twice(world, user, sell)
    await world.idle()
    assert [o.qty for o in world.sim.orders] == [10]
    assert [(o.symbol, o.qty) for o in world.sim.us_orders] == [("AAPL", 5)]


def _close_buttons(world: World, message_id: int) -> list[str]:
    call = next(
        c for c in reversed(world.stack.standin.calls_to("sendMessage"))
        if "reply_markup" in c.params and "close:" in c.params["reply_markup"]
    )
    markup = call.json_param("reply_markup")
    assert isinstance(markup, dict)
    return [str(b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


# --- /delete, /afterhours -----------------------------------------------------------------


async def test_delete_revokes_the_kis_access_token(world: World) -> None:
    user = world.stack.standin.user(9161, "Ryu", language_code="en")
    await register(world.stack, user)
    stored = await world.stack.storage.tokens.load(
        CredentialKind.ACCESS_TOKEN, DEMO_APP_KEY, Environment.PAPER
    )
    assert stored is not None
    code = await _code(user, "/delete", "Delete keys: send the 6-digit code")
    await say(user, code, "KIS's access tokens revoked")

    revokes = [r for r in world.sim.requests if r.endpoint == "revoke"]
    assert [(r.app_key, r.status) for r in revokes] == [(DEMO_APP_KEY, 200)]
    issued = world.sim.credentials
    with pytest.raises(KisRefusal):  # KIS no longer takes the revoked token
        issued.check_bearer(f"Bearer {stored.value.reveal()}", DEMO_APP_KEY)


async def test_afterhours_is_refused_in_paper_with_the_reason(world: World) -> None:
    user = world.stack.standin.user(9162, "Nam", language_code="en")
    await register(world.stack, user)
    await say(user, "/afterhours reserve", "real trading only")
    options = await world.stack.storage.options.get(await world.user_id(9162))
    assert not options.afterhours_reserve
    await say(user, "/afterhours", "After-hours reservations: off")


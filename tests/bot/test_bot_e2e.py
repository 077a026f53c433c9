"""End to end: aiogram's real polling against the Bot API stand-in over loopback, the
KIS simulator, and a real SQLite storage — the key flow, 2FA, modes, webhook, delete,
and one user never seeing another's data."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import httpx
import pytest
from aiogram import Bot, Dispatcher
from aiohttp import web

from bot.factory import create_bot_for, create_dispatcher
from bot.notifier import Notifier
from bot.runner import attach_bot
from bot.standin import BotApiStandIn, SimUser
from bot.standin.model import ChatMessage
from bot.watchers import WatcherSupervisor
from kis.client import KisClient
from kis.env import Endpoints, Environment
from kis.keycheck import KeyChecker
from kis.models import Account, AppCredentials, OrderRequest, Side
from kis.secret import Secret
from kis.sim import KisSimulator, demo_account, demo_real_account
from kis.ws import Backoff, HubOptions, Status
from storage.facade import Storage
from webhook_server.app import create_app
from webhook_server.close_orders import CloseOrders
from webhook_server.market_hours import MarketClock
from webhook_server.metrics import Metrics
from webhook_server.pipeline import OrderPipeline
from webhook_server.settlement import FillSettler
from webhook_server.store_intake import StorageIntake

PUBLIC_URL = "https://moahook.example"
WEBHOOK_SECRET = "telegram-says-hello-123"
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


class StateLog:
    """The supervisor's observer: fill-notice state changes, as events to wait on."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notice(self, kind: str) -> None:
        pass

    def state(self, user_id: int, status: str) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def changed(self) -> None:
        await self._event.wait()


@dataclass
class Stack:
    standin: BotApiStandIn
    sim: KisSimulator
    storage: Storage
    bot: Bot
    dispatcher: Dispatcher
    notifier: Notifier
    watchers: WatcherSupervisor
    kis: KisClient
    hook_url: str | None = None
    web_url: str = ""
    states: StateLog = field(default_factory=StateLog)
    pipeline: OrderPipeline | None = None


@contextlib.asynccontextmanager
async def running_stack(
    tmp_path: Path, *, webhook: bool = False, bot_token: str | None = None,
    master_key: bytes | None = None, clock: Callable[[], datetime] | None = None,
    sim: KisSimulator | None = None,
) -> AsyncIterator[Stack]:
    """`clock`: storage's clock (confirm-mode expiry); `sim`: a simulator to use instead
    of the default one (started here)."""
    storage = await Storage.open(
        f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", [master_key or os.urandom(32)],
        **({"clock": clock} if clock is not None else {}),
    )
    http = httpx.AsyncClient(timeout=5.0)
    sock = socket.socket()
    try:
        async with sim or KisSimulator() as sim, BotApiStandIn(bot_token) as standin:
            endpoints = Endpoints(
                rest={env: sim.rest_url(env) for env in Environment},
                ws={env: sim.ws_url(env) for env in Environment},
            )
            kis = KisClient(endpoints=endpoints, http=http, token_store=storage.tokens)
            bot = create_bot_for(standin.token, standin.base_url)
            notifier = Notifier(bot, storage, poll_interval=0.2)
            settler = FillSettler(storage=storage, kis=kis, wake=notifier.wake, quiet_s=0.3)
            states = StateLog()
            watchers = WatcherSupervisor(
                storage=storage, kis=kis, endpoints=endpoints, wake=notifier.wake,
                hub_options=HubOptions(backoff=Backoff(base=0.05, cap=0.2)),
                settler=settler, observer=states,
            )
            # The web side as `moahook serve` wires it: hook endpoint → intake → pipeline,
            # with the watchers as the pipeline's fill-notice guard.
            metrics = Metrics()
            pipeline = OrderPipeline(
                storage=storage, kis=kis, market=MarketClock(enforce=False), readiness=watchers,
                metrics=metrics, wake=notifier.wake, settler=settler,
            )
            intake = StorageIntake(storage, pipeline)
            await intake.start()
            dispatcher = create_dispatcher(
                storage=storage, keychecker=KeyChecker(kis, fill_timeout=5.0),
                watchers=watchers, notifier=notifier, public_url=PUBLIC_URL,
                forget_webhook_token=intake.forget_token,
                run_alert=pipeline.run_stored,
                close_orders=CloseOrders(storage, pipeline.run_stored),
            )

            async def healthy() -> tuple[bool, str]:
                return True, "ok"

            app = create_app(intake=intake, metrics=metrics, health=healthy)
            hook_url = None
            if webhook:
                sock.bind(("127.0.0.1", 0))
                hook_url = f"http://127.0.0.1:{sock.getsockname()[1]}/telegram/hook"
            started = attach_bot(app, bot=bot, dispatcher=dispatcher, notifier=notifier,
                                 watchers=watchers, webhook_url=hook_url,
                                 webhook_secret=WEBHOOK_SECRET)
            runner = web.AppRunner(app)
            await runner.setup()
            try:
                if not webhook:
                    sock.bind(("127.0.0.1", 0))
                await web.SockSite(runner, sock).start()
                await asyncio.wait_for(started.wait(), 10)
                yield Stack(standin, sim, storage, bot, dispatcher, notifier, watchers, kis,
                            hook_url, f"http://127.0.0.1:{sock.getsockname()[1]}", states,
                            pipeline)
            finally:
                await runner.cleanup()
                await pipeline.close()
                await settler.close()
                await intake.close()
    finally:
        sock.close()
        await http.aclose()
        await storage.close()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


async def main_account(stack: Stack, user_id: int) -> int:
    """The user's default account (fill-notice connections are per account)."""
    account = await stack.storage.accounts.default(user_id)
    assert account is not None
    return account.id


async def say(user: SimUser, text: str, expect: str) -> ChatMessage:
    mark = user.mark()
    await user.send_text(text)
    return await user.wait_for_bot_message(expect, after=mark)


async def enter_keys(
    user: SimUser, *, app_key: str, app_secret: str, account: str, hts_id: str, env_button: str
) -> str:
    """The key flow up to the 2FA code; returns the code the bot sent."""
    await say(user, "/keys", "1/5")
    mark = user.mark()
    key_id = await user.send_text(app_key)
    await user.wait_for_deleted(key_id)
    await user.wait_for_bot_message("2/5", after=mark)
    mark = user.mark()
    secret_id = await user.send_text(app_secret)
    await user.wait_for_deleted(secret_id)
    await user.wait_for_bot_message("3/5", after=mark)
    await say(user, account, "4/5")
    await say(user, hts_id, "5/5")
    mark = user.mark()
    await user.press(env_button)
    code_message = await user.wait_for_bot_message("moahook", after=mark)
    await user.wait_for_bot_message(lambda m: "6자리" in m.text or "6-digit" in m.text,
                                    after=mark)
    found = CODE.search(code_message.text)
    assert found is not None
    return found.group(1)


async def register(stack: Stack, user: SimUser, *, real: bool = False, hts_id: str | None = None,
                   as_env: str | None = None) -> ChatMessage:
    account = demo_real_account() if real else demo_account()
    button = as_env or ("실전투자 (Real)" if real else "모의투자 (Paper)")
    code = await enter_keys(
        user, app_key=account.app_key, app_secret=account.app_secret,
        account=account.account_number, hts_id=hts_id or account.hts_id, env_button=button,
    )
    mark = user.mark()
    await user.send_text(code)
    return await user.wait_for_bot_message(
        lambda m: "⏳" not in m.text and ("✅" in m.text or "❌" in m.text), after=mark,
        timeout=15,
    )


async def test_paper_keys_flow_end_to_end(stack: Stack) -> None:
    user = stack.standin.user(7001, "Minji", language_code="ko")
    greeting = await say(user, "/start", "moahook")
    token = await stack.storage.users.webhook_token(
        (await stack.storage.users.by_telegram_id(7001)).id  # type: ignore[union-attr]
    )
    assert f"{PUBLIC_URL}/hook/{token}" in greeting.text  # shown before any keys exist
    assert "/keys" in greeting.text and "/webhook" in greeting.text

    checklist = await register(stack, user)

    assert checklist.text.count("✅") == 3, checklist.text
    assert "모두 통과했습니다" in checklist.text
    # The two secret-bearing messages are gone and the user was told, in order.
    transcript = user.transcript()
    assert transcript.count("(deleted by the bot)") == 2
    assert "App Key가 담긴 메시지를 지웠습니다" in transcript
    assert "App Secret이 담긴 메시지를 지웠습니다" in transcript
    account = demo_account()
    for message in user.bot_messages():
        assert account.app_secret not in message.text
        assert account.app_key not in message.text
    # The environment keyboard: paper first, exactly these labels.
    keyboard_call = next(
        c for c in stack.standin.calls_to("sendMessage") if "5/5" in c.params.get("text", "")
    )
    rows = keyboard_call.json_param("reply_markup")["inline_keyboard"]  # type: ignore[index]
    assert [b["text"] for b in rows[0]] == ["모의투자 (Paper)", "실전투자 (Real)"]
    # The code came as its own message, before the prompt asking for it.
    texts = [m.text for m in user.bot_messages()]
    code_index = next(i for i, text in enumerate(texts) if "인증 코드" in text)
    assert CODE.search(texts[code_index]) and "6자리" in texts[code_index + 1]

    user_id = (await stack.storage.users.by_telegram_id(7001)).id  # type: ignore[union-attr]
    keys = await stack.storage.key_sets.get(user_id, Environment.PAPER)
    assert keys is not None and keys.validated and keys.hts_id == account.hts_id
    assert stack.watchers.is_ready(await main_account(stack, user_id))

    status = await say(user, "/status", "상태")
    assert "연결됨" in status.text and "✅" in status.text


async def test_five_wrong_codes_void_the_code(stack: Stack) -> None:
    user = stack.standin.user(7002, "Jisoo", language_code="en")
    account = demo_account()
    code = await enter_keys(
        user, app_key=account.app_key, app_secret=account.app_secret,
        account=account.cano, hts_id=account.hts_id, env_button="모의투자 (Paper)",
    )
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        await say(user, wrong, f"{left} tries left")
    await say(user, wrong, "void")
    # The right code no longer does anything: the flow is over, nothing was saved.
    await say(user, code, "did not understand")
    user_id = (await stack.storage.users.by_telegram_id(7002)).id  # type: ignore[union-attr]
    assert await stack.storage.key_sets.for_user(user_id) == []


async def test_real_keys_registered_as_paper_are_diagnosed_as_other_environment(
    stack: Stack,
) -> None:
    user = stack.standin.user(7003, "Alex", language_code="en")
    checklist = await register(stack, user, real=True, as_env="모의투자 (Paper)")
    assert "❌ Environment/token: these keys belong to the other environment" in checklist.text
    assert "real trading" in checklist.text and "/keys again and choose" in checklist.text
    user_id = (await stack.storage.users.by_telegram_id(7003)).id  # type: ignore[union-attr]
    keys = await stack.storage.key_sets.get(user_id, Environment.PAPER)
    assert keys is not None and not keys.validated
    assert stack.watchers.connection_state(await main_account(stack, user_id)) is None


async def test_wrong_hts_id_shows_kis_refusal_and_blocks(stack: Stack) -> None:
    user = stack.standin.user(7004, "Sam", language_code="en")
    checklist = await register(stack, user, hts_id="nobody42")
    assert "✅ Environment/token" in checklist.text
    assert "✅ Account" in checklist.text
    assert "❌ Fill notice: KIS refused HTS ID nobody42 (invalid tr_key" in checklist.text
    assert "your KIS login ID" in checklist.text
    user_id = (await stack.storage.users.by_telegram_id(7004)).id  # type: ignore[union-attr]
    assert not stack.watchers.is_ready(await main_account(stack, user_id))
    keys = await stack.storage.key_sets.get(user_id, Environment.PAPER)
    assert keys is not None and not keys.validated


async def test_real_mode_needs_validated_real_keys_and_a_code(stack: Stack) -> None:
    user = stack.standin.user(7005, "Hana", language_code="en")
    await say(user, "/real", "needs real keys that passed the checks")
    checklist = await register(stack, user, real=True)
    assert checklist.text.count("✅") == 3, checklist.text
    assert "The active environment is paper trading" in checklist.text

    user_id = (await stack.storage.users.by_telegram_id(7005)).id  # type: ignore[union-attr]
    code_message = await say(user, "/real", "moahook code")
    await user.wait_for_bot_message("Switch to real trading: send the 6-digit code")
    found = CODE.search(code_message.text)
    assert found is not None
    await say(user, found.group(1), "Switched to real trading")
    record = await stack.storage.users.get(user_id)
    assert record is not None and record.active_environment is Environment.REAL
    assert stack.watchers.is_ready(await main_account(stack, user_id))

    await say(user, "/paper", "Switched to paper trading")
    await user.wait_for_bot_message("no paper keys yet")
    assert stack.watchers.connection_state(await main_account(stack, user_id)) is None


async def test_webhook_shows_url_and_quoted_templates_and_rotates_with_a_code(
    stack: Stack,
) -> None:
    user = stack.standin.user(7006, "Joon", language_code="en")
    shown = await say(user, "/webhook", "Your webhook URL")
    user_id = (await stack.storage.users.by_telegram_id(7006)).id  # type: ignore[union-attr]
    token = await stack.storage.users.webhook_token(user_id)
    assert f"{PUBLIC_URL}/hook/{token}" in shown.text
    assert '"quantity":"{{strategy.order.contracts}}"' in shown.text
    assert '"ticker":"{{ticker}}","action":"buy","quantity":"1"' in shown.text

    code_message = await say(user, "/webhook rotate", "moahook code")
    found = CODE.search(code_message.text)
    assert found is not None
    await say(user, found.group(1), "New webhook URL issued")
    new_token = await stack.storage.users.webhook_token(user_id)
    assert new_token != token
    assert await stack.storage.users.by_webhook_token(token) is None


async def test_delete_needs_a_code_and_forgets_keys(stack: Stack) -> None:
    user = stack.standin.user(7007, "Dana", language_code="en")
    await register(stack, user)
    user_id = (await stack.storage.users.by_telegram_id(7007)).id  # type: ignore[union-attr]
    assert stack.watchers.is_ready(await main_account(stack, user_id))
    old_token = await stack.storage.users.webhook_token(user_id)

    code_message = await say(user, "/delete", "moahook code")
    found = CODE.search(code_message.text)
    assert found is not None
    await say(user, found.group(1), "All your keys and tokens are deleted")

    assert await stack.storage.key_sets.for_user(user_id) == []
    assert stack.watchers.connection_state(await main_account(stack, user_id)) is None
    assert await stack.storage.users.webhook_token(user_id) != old_token
    await say(user, "/delete", "no keys to delete")


async def test_one_user_never_sees_another_users_data(stack: Stack) -> None:
    owner = stack.standin.user(7101, "Owner", language_code="en")
    other = stack.standin.user(7102, "Other", language_code="en")
    await register(stack, owner)
    owner_id = (await stack.storage.users.by_telegram_id(7101)).id  # type: ignore[union-attr]
    accepted = await stack.storage.alerts.accept(
        owner_id, '{"ticker":"005930","action":"buy","quantity":"1"}',
        {"ticker": "005930", "action": "buy", "quantity": 1}, None,
    )
    await stack.storage.orders.create_pending(
        accepted.alert_id, user_id=owner_id, environment=Environment.PAPER, symbol="005930",
        side="buy", order_type="market", quantity=1, name="삼성전자",
    )
    owner_token = await stack.storage.users.webhook_token(owner_id)

    # The other user's views are their own, whatever they type after the command.
    assert "No orders yet" in (await say(other, f"/orders {owner_id}", "order")).text
    assert "No alerts" in (await say(other, f"/log {7101}", "alert")).text
    status = await say(other, "/status", "Status")
    assert "Keys: none" in status.text
    shown = await say(other, "/webhook", "Your webhook URL")
    assert owner_token not in shown.text
    # And the owner still sees theirs.
    assert "삼성전자 (005930)" in (await say(owner, "/orders", "order")).text
    # Deleting is per user: the other user's /delete touches nothing of the owner's.
    await say(other, "/delete", "no keys to delete")
    assert len(await stack.storage.key_sets.for_user(owner_id)) == 1
    for message in other.bot_messages():
        assert owner_token not in message.text and demo_account().hts_id not in message.text


async def test_fill_notices_reach_the_chat_formatted(stack: Stack) -> None:
    """An order placed for the user: KIS's acceptance and fill notices arrive over the
    fill-notice WebSocket, are stored, and reach the chat once each (ko, KRW, KST)."""
    user = stack.standin.user(7201, "Minji", language_code="ko")
    await register(stack, user)
    user_id = (await stack.storage.users.by_telegram_id(7201)).id  # type: ignore[union-attr]
    accepted = await stack.storage.alerts.accept(
        user_id, '{"ticker":"005930","action":"buy","quantity":"3"}',
        {"ticker": "005930", "action": "buy", "quantity": 3}, None,
    )
    main = await stack.storage.accounts.default(user_id)
    assert main is not None
    order = await stack.storage.orders.create_pending(
        accepted.alert_id, user_id=user_id, environment=Environment.PAPER, symbol="005930",
        side="buy", order_type="market", quantity=3, name="삼성전자", account_id=main.id,
    )
    account = demo_account()
    creds = AppCredentials(app_key=account.app_key, app_secret=Secret(account.app_secret),
                           env=Environment.PAPER)
    mark = user.mark()
    ack = await stack.kis.place_order(
        creds, Account.parse(account.account_number),
        OrderRequest(symbol="005930", side=Side.BUY, quantity=3),
    )
    await stack.storage.orders.mark_accepted(order.id, ack.order_no, ack.branch)

    filled = await user.wait_for_bot_message("✅ 체결 (", after=mark, timeout=10)
    price = stack.sim.price("005930")
    assert "삼성전자 (005930)" in filled.text and "매수 3주" in filled.text
    assert f"{price:,}원" in filled.text and "KST" in filled.text
    await user.wait_for_bot_message("📨 주문 접수", after=mark)
    stored = await stack.storage.orders.get(order.id)
    assert stored is not None and stored.filled_qty == 3 and stored.status.value == "filled"
    # Each notice once, even though KIS's acceptance notice and a fill both arrived.
    texts = [m.text for m in user.bot_messages()]
    assert sum("✅ 체결 (" in text for text in texts) == 1, user.transcript()
    assert sum("📨 주문 접수" in text for text in texts) == 1, user.transcript()
    assert await stack.storage.outbox.pending_count() == 0


async def test_webhook_mode_serves_updates_and_checks_the_secret_token(tmp_path: Path) -> None:
    async with running_stack(tmp_path, webhook=True) as stack:
        assert stack.hook_url is not None
        assert stack.standin.webhook_url == stack.hook_url
        user = stack.standin.user(7301, "Web", language_code="en")
        greeting = await say(user, "/start", "Hello, this is moahook")
        assert "/hook/" in greeting.text
        forged = {"update_id": 999, "message": {
            "message_id": 1, "date": 0, "text": "/start",
            "chat": {"id": 7302, "type": "private"},
            "from": {"id": 7302, "is_bot": False, "first_name": "Eve"}}}
        async with aiohttp.ClientSession() as session:
            async with session.post(stack.hook_url, json=forged) as response:
                assert response.status == 401
            async with session.post(
                stack.hook_url, json=forged,
                headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            ) as response:
                assert response.status == 401
        assert await stack.storage.users.by_telegram_id(7302) is None


async def test_group_chats_and_other_peoples_chats_get_nothing(stack: Stack) -> None:
    """Updates from a group, or from a chat that is not the sender's own, reach no handler:
    nothing is looked up, nothing is sent, no user is created."""
    from aiogram.types import Update

    def update(update_id: int, chat: dict[str, object], sender: int) -> Update:
        return Update.model_validate({"update_id": update_id, "message": {
            "message_id": update_id, "date": 0, "text": "/webhook", "chat": chat,
            "from": {"id": sender, "is_bot": False, "first_name": "Eve"}}})

    group = {"id": -100123, "type": "supergroup", "title": "traders"}
    others_chat = {"id": 7402, "type": "private"}
    before = len(stack.standin.calls_to("sendMessage"))
    await stack.dispatcher.feed_update(stack.bot, update(1, group, 7401))
    await stack.dispatcher.feed_update(stack.bot, update(2, others_chat, 7401))
    assert len(stack.standin.calls_to("sendMessage")) == before
    assert await stack.storage.users.by_telegram_id(7401) is None


async def test_language_follows_telegram_then_lang_command(stack: Stack) -> None:
    user = stack.standin.user(7501, "Lee", language_code="en-US")
    await say(user, "/help", "Commands")
    await say(user, "/lang ko", "한국어")
    await say(user, "/help", "명령어")
    await say(user, "/lang fr", "사용법: /lang ko 또는 /lang en")
    await say(user, "/lang en", "English")
    user_id = (await stack.storage.users.by_telegram_id(7501)).id  # type: ignore[union-attr]
    record = await stack.storage.users.get(user_id)
    assert record is not None and record.language == "en"


async def test_alert_to_order_to_fill_notice_in_chat(stack: Stack) -> None:
    """The whole product: /webhook's URL and template → TradingView-style POST → KIS order
    (simulator) → acceptance and fill notices over the WebSocket → the chat."""
    user = stack.standin.user(7601, "Trader", language_code="en")
    await register(stack, user)
    shown = await say(user, "/webhook", "Your webhook URL")
    url = next(word for word in shown.text.split() if "/hook/" in word)
    hook = stack.web_url + url.removeprefix(PUBLIC_URL)
    mark = user.mark()
    async with aiohttp.ClientSession() as session:
        body = '{"ticker":"KRX:005930","action":"buy","quantity":"2","comment":"e2e"}'
        async with session.post(hook, data=body, headers={"content-type": "text/plain"}) as r:
            assert r.status == 200 and (await r.json())["status"] == "accepted"
        refused = '{"ticker":"000660","action":"sell","quantity":"1"}'
        async with session.post(hook, data=refused) as r:
            assert r.status == 200

    filled = await user.wait_for_bot_message("Filled (paper trading)", after=mark, timeout=10)
    assert "005930" in filled.text and "buy 2 sh @" in filled.text and "KST" in filled.text
    accepted = await user.wait_for_bot_message("Order accepted", after=mark)
    # From the order-cash answer or KIS's acceptance notice, whichever came first: once.
    assert "buy 2 sh at market" in accepted.text
    refusal = await user.wait_for_bot_message("Order refused", after=mark)
    assert "000660" in refusal.text and "not held" in refusal.text
    texts = [m.text for m in user.bot_messages()]
    assert sum("Order accepted" in text for text in texts) == 1
    assert sum("Filled (paper" in text for text in texts) == 1
    assert len(stack.sim.orders) == 1

    orders = await say(user, "/orders", "Last")
    assert "filled 2/2 sh" in orders.text
    log = await say(user, "/log", "Last")
    assert "refused" in log.text and "ordered" in log.text


async def test_equal_lots_filled_in_one_second_are_all_counted(stack: Stack) -> None:
    """KRX often fills a market order in equal lots within one second; KIS sends no fill
    id, so the notices are identical. Each is a fill: the order ends filled, in the chat
    and in /orders (they were taken for one repeated notice)."""
    stack.sim.broker.fill_lots = 3
    user = stack.standin.user(7602, "Lots", language_code="en")
    await register(stack, user)
    hook = await _hook_url(stack, user)
    mark = user.mark()
    await _post_alert(hook, '{"ticker":"005930","action":"buy","quantity":"9"}')
    filled = await user.wait_for_bot_message("Filled (paper trading)", after=mark, timeout=10)
    assert "buy 3 sh @" in filled.text
    [sim_order] = stack.sim.orders
    assert [f.qty for f in sim_order.fills] == [3, 3, 3]
    assert len({f.time for f in sim_order.fills}) == 1, "one second, identical notices"
    partials = [m.text for m in user.bot_messages() if "Partially filled" in m.text]
    assert len(partials) == 2
    [order] = await stack.storage.orders.recent(await _user_id(stack, user))
    assert (order.filled_qty, order.quantity) == (9, 9)
    assert [f.quantity for f in await stack.storage.fills.for_order(order.id)] == [3, 3, 3]
    orders = await say(user, "/orders", "Last")
    assert "filled 9/9 sh" in orders.text


async def _user_id(stack: Stack, user: SimUser) -> int:
    record = await stack.storage.users.by_telegram_id(user.id)
    assert record is not None
    return record.id


async def test_a_lost_fill_notice_is_settled_from_kis_daily_executions(stack: Stack) -> None:
    """One of two lots never gets a notice: once the order's notices are quiet, KIS's
    daily executions show it filled; the missing lot is recorded once, with a message
    saying where it came from."""
    stack.sim.broker.fill_lots = 2
    stack.sim.lose_fill_notices = 1
    user = stack.standin.user(7603, "Lost", language_code="en")
    await register(stack, user)
    hook = await _hook_url(stack, user)
    mark = user.mark()
    await _post_alert(hook, '{"ticker":"005930","action":"buy","quantity":"8"}')
    filled = await user.wait_for_bot_message("Filled (paper trading)", after=mark, timeout=10)
    assert "buy 4 sh @" in filled.text and "daily executions" in filled.text
    [order] = await stack.storage.orders.recent(await _user_id(stack, user))
    assert (order.filled_qty, order.notice_qty, order.settled_qty) == (8, 4, 8)
    assert order.status.value == "filled"
    assert [n.delivered_to for n in stack.sim.notices if n.fields[13] == "2"] == [0, 1]
    orders = await say(user, "/orders", "Last")
    assert "filled 8/8 sh" in orders.text


async def _until(stack: Stack, condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait (bounded) until `condition` holds, re-checked at each fill-notice state change."""
    async with asyncio.timeout(within):
        while not condition():
            await stack.states.changed()


async def test_an_alert_during_a_fill_notice_reconnect_is_held_then_placed(
    stack: Stack,
) -> None:
    """KIS drops the fill-notice socket and holds its slot for a moment (OPSP8996): an
    alert arriving while it reconnects is held, then placed, instead of being refused
    with "fill notices not ready"."""
    user = stack.standin.user(7604, "Reconnect", language_code="en")
    await register(stack, user)
    user_id = await _user_id(stack, user)
    hook = await _hook_url(stack, user)
    stack.sim.ws.slot_hold_s = 0.25  # reconnects are refused as "in use" for a while
    assert stack.sim.drop_ws() == 1
    main = await main_account(stack, user_id)
    await _until(stack, lambda: (state := stack.watchers.connection_state(main)) is not None
                 and state.status is Status.CONNECTING)
    mark = user.mark()
    await _post_alert(hook, '{"ticker":"005930","action":"buy","quantity":"1"}')
    await user.wait_for_bot_message("Filled (paper trading)", after=mark, timeout=10)
    assert len(stack.sim.orders) == 1
    assert not [m for m in user.bot_messages() if "Order refused" in m.text]


async def test_authenticator_app_enrolment_then_it_replaces_the_chat_code(
    stack: Stack,
) -> None:
    """/totp: a chat code, a QR code (a PNG) with the key to type in, the app's first code;
    the QR message is then deleted. From then on rotating the webhook asks for the app's
    code: no chat code is sent, and a code is not accepted twice."""
    import time

    import pyotp

    user = stack.standin.user(7605, "Otp", language_code="en")
    await register(stack, user)
    mark = user.mark()
    await user.send_text("/totp")
    code_message = await user.wait_for_bot_message("moahook code", after=mark)
    found = CODE.search(code_message.text)
    assert found is not None
    mark = user.mark()
    await user.send_text(found.group(1))
    qr = await user.wait_for_bot_message(lambda m: bool(m.photo), after=mark)
    assert qr.photo.startswith(b"\x89PNG\r\n\x1a\n") and "authenticator" in qr.text
    secret = next(line for line in qr.text.splitlines() if re.fullmatch(r"[A-Z2-7]{32}", line))
    totp = pyotp.TOTP(secret)
    first = totp.now()
    mark = user.mark()
    await user.send_text(first)
    await user.wait_for_bot_message("Authenticator app set up", after=mark)
    await user.wait_for_deleted(qr.id)

    mark = user.mark()
    await user.send_text("/webhook rotate")
    await user.wait_for_bot_message("authenticator app shows", after=mark)
    assert not [m for m in user.bot_messages() if "moahook code" in m.text
                and m.id > code_message.id], "no chat code once an app is enrolled"
    mark = user.mark()
    await user.send_text(first)  # already used: never accepted twice
    await user.wait_for_bot_message("Wrong code", after=mark)
    mark = user.mark()
    await user.send_text(totp.at(time.time() + 30))
    await user.wait_for_bot_message("New webhook URL issued", after=mark)
    assert await stack.storage.totp.enrolled(await _user_id(stack, user))
    assert secret not in " ".join(m.text for m in user.bot_messages())


async def _hook_url(stack: Stack, user: SimUser) -> str:
    """The user's webhook URL as /webhook shows it, on the test's web server."""
    shown = await say(user, "/webhook", "Your webhook URL")
    url = next(word for word in shown.text.split() if "/hook/" in word)
    return stack.web_url + url.removeprefix(PUBLIC_URL)


async def _post_alert(hook: str, body: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(hook, data=body) as answer:
        assert answer.status == 200

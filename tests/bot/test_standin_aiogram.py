"""The Bot API stand-in driven by the real aiogram Bot and Dispatcher over loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandStart
from aiogram.methods import GetUpdates
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot.standin import BotApiStandIn

USER_ID = 7001


def _router() -> Router:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(text="모의투자 (Paper)", callback_data="env:paper"),
                    InlineKeyboardButton(text="실전투자 (Real)", callback_data="env:real"),
                ]
            ]
        )
        await message.answer(
            "안녕하세요 <b>moahook</b>입니다.\n환경을 고르세요.",
            parse_mode="HTML",
            reply_markup=keyboard,
        )

    @router.callback_query(F.data.startswith("env:"))
    async def choose(callback: CallbackQuery) -> None:
        assert callback.data is not None and isinstance(callback.message, Message)
        await callback.answer("ok")
        await callback.message.edit_text(f"환경: {callback.data.removeprefix('env:')}")

    @router.message(Command("secret"))
    async def secret(message: Message) -> None:
        await message.delete()
        await message.answer("비밀 메시지를 지웠습니다.")

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    return router


@dataclass
class Running:
    standin: BotApiStandIn
    bot: Bot
    dispatcher: Dispatcher
    polling: asyncio.Task[None]


@pytest.fixture
async def standin() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as server:
        yield server


@pytest.fixture
async def bot(standin: BotApiStandIn) -> AsyncIterator[Bot]:
    async with Bot(standin.token, session=standin.session()) as client:
        yield client


@pytest.fixture
async def running(standin: BotApiStandIn) -> AsyncIterator[Running]:
    dispatcher = Dispatcher()
    dispatcher.include_router(_router())
    started = asyncio.Event()
    dispatcher.startup.register(started.set)
    polling_bot = Bot(standin.token, session=standin.session())
    polling = asyncio.create_task(dispatcher.start_polling(polling_bot, handle_signals=False))
    await asyncio.wait_for(started.wait(), 5)
    yield Running(standin, polling_bot, dispatcher, polling)
    if not polling.done():
        await dispatcher.stop_polling()
    await asyncio.wait_for(polling, 5)  # also closes the polling bot's session


async def test_start_reaches_handler_and_reply_is_recorded(running: Running) -> None:
    user = running.standin.user(USER_ID, "Minji")
    sent = await user.send_text("/start")

    reply = await user.wait_for_bot_message("안녕하세요")

    assert reply.text == "안녕하세요 moahook입니다.\n환경을 고르세요."  # HTML tags parsed away
    assert reply.buttons == (("모의투자 (Paper)", "실전투자 (Real)"),)
    assert reply.id > sent
    [call] = running.standin.calls_to("sendMessage")
    assert call.params["chat_id"] == str(USER_ID)
    assert call.params["parse_mode"] == "HTML"
    assert call.json_param("reply_markup") == {
        "inline_keyboard": [
            [
                {"text": "모의투자 (Paper)", "callback_data": "env:paper"},
                {"text": "실전투자 (Real)", "callback_data": "env:real"},
            ]
        ]
    }
    assert [m.sender for m in user.messages] == ["user", "bot"]


async def test_pressing_a_button_reaches_the_callback_handler(running: Running) -> None:
    user = running.standin.user(USER_ID, "Minji")
    await user.send_text("/start")
    menu = await user.wait_for_bot_message("안녕하세요")
    mark = user.mark()

    query_id = await user.press("모의투자 (Paper)")
    edited = await user.wait_for_bot_message("환경:", after=mark)

    assert edited.id == menu.id
    assert edited.text == "환경: paper"
    assert edited.edited and edited.buttons == ()
    await running.standin.wait_until(lambda: query_id in running.standin.answered_callbacks)
    assert running.standin.answered_callbacks[query_id]["text"] == "ok"
    assert "(pressed) [ 모의투자 (Paper) ]" in user.transcript()


async def test_press_by_callback_data_and_unknown_button(running: Running) -> None:
    user = running.standin.user(USER_ID, "Minji")
    await user.send_text("/start")
    await user.wait_for_bot_message("안녕하세요")
    mark = user.mark()

    await user.press("env:real")

    assert (await user.wait_for_bot_message("환경:", after=mark)).text == "환경: real"
    with pytest.raises(LookupError):
        await user.press("no such button")


async def test_bot_deleting_a_message_is_recorded_and_hidden(running: Running) -> None:
    user = running.standin.user(USER_ID, "Minji")
    secret_id = await user.send_text("/secret PSabcdef123456")

    deleted = await user.wait_for_deleted(secret_id)
    await user.wait_for_bot_message("지웠습니다")

    assert deleted.deleted and deleted.sender == "user"
    [call] = running.standin.calls_to("deleteMessage")
    assert call.params == {"chat_id": str(USER_ID), "message_id": str(secret_id)}
    assert "PSabcdef123456" not in user.transcript()
    assert "👤 user: (deleted by the bot)" in user.transcript()


async def test_wait_for_next_message_ignores_earlier_ones(running: Running) -> None:
    user = running.standin.user(USER_ID, "Minji")
    await user.send_text("one")
    await user.wait_for_bot_message("echo: one")
    mark = user.mark()

    await user.send_text("two")
    following = await user.wait_for_bot_message(lambda m: m.text.startswith("echo"), after=mark)

    assert following.text == "echo: two"


async def test_wait_for_bot_message_times_out_with_the_chat(standin: BotApiStandIn) -> None:
    user = standin.user(USER_ID, "Minji")
    await user.send_text("hello")

    with pytest.raises(TimeoutError, match="👤 user: hello"):
        await user.wait_for_bot_message("never", timeout=0.05)


async def test_stop_polling_finishes_promptly(running: Running) -> None:
    user = running.standin.user(USER_ID, "Minji")
    await user.send_text("ping")
    await user.wait_for_bot_message("echo: ping")
    # The dispatcher now sits in a 10 s long poll; stopping must not wait for it.
    began = time.monotonic()

    await running.dispatcher.stop_polling()
    await asyncio.wait_for(running.polling, 3)

    assert time.monotonic() - began < 2


async def test_429_raises_retry_after_and_the_retry_is_recorded(
    standin: BotApiStandIn, bot: Bot
) -> None:
    standin.user(USER_ID, "Minji")
    standin.fail_next("sendMessage", error_code=429, retry_after=7)

    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(USER_ID, "notice")
    assert raised.value.retry_after == 7
    assert "retry after 7" in raised.value.message

    sent = await bot.send_message(USER_ID, "notice")
    assert sent.text == "notice"
    assert sent.from_user is not None and sent.from_user.id == standin.bot_id
    assert [c.status for c in standin.calls_to("sendMessage")] == [429, 200]
    assert [m.text for m in standin.user(USER_ID, "Minji").bot_messages()] == ["notice"]
    assert len(standin.send_times(USER_ID)) == 1


async def test_500_raises_server_error_once(standin: BotApiStandIn, bot: Bot) -> None:
    standin.user(USER_ID, "Minji")
    standin.fail_next("sendMessage", error_code=500)

    with pytest.raises(TelegramServerError):
        await bot.send_message(USER_ID, "x")
    await bot.send_message(USER_ID, "x")


async def test_per_chat_limit_answers_429() -> None:
    async with (
        BotApiStandIn(per_chat_limit=(1, 30.0)) as standin,
        Bot(standin.token, session=standin.session()) as bot,
    ):
        standin.user(USER_ID, "Minji")
        standin.user(USER_ID + 1, "Jisoo")
        await bot.send_message(USER_ID, "first")
        await bot.send_message(USER_ID + 1, "other chat is fine")

        with pytest.raises(TelegramRetryAfter) as raised:
            await bot.send_message(USER_ID, "second")
        assert 1 <= raised.value.retry_after <= 30


async def test_long_poll_wakes_on_update_and_times_out_empty(
    standin: BotApiStandIn, bot: Bot
) -> None:
    user = standin.user(USER_ID, "Minji")
    poll = asyncio.create_task(bot(GetUpdates(timeout=30)))
    await standin.wait_until(lambda: standin.long_polls_waiting == 1)
    began = time.monotonic()

    await user.send_text("hi")
    [update] = await asyncio.wait_for(poll, 3)

    assert time.monotonic() - began < 1
    assert update.message is not None and update.message.text == "hi"
    # Unconfirmed updates come again; offset confirms them.
    assert [u.update_id for u in await bot(GetUpdates())] == [update.update_id]
    assert await bot(GetUpdates(offset=update.update_id + 1, timeout=1)) == []


async def test_stopping_the_server_ends_a_pending_long_poll(standin: BotApiStandIn) -> None:
    bot = Bot(standin.token, session=standin.session())
    try:
        poll = asyncio.create_task(bot(GetUpdates(timeout=30)))
        await standin.wait_until(lambda: standin.long_polls_waiting == 1)
        began = time.monotonic()
        await standin.stop()
        assert time.monotonic() - began < 2.5
        result = await asyncio.wait_for(poll, 3)
        assert result == []
    finally:
        await bot.session.close()


async def test_commands_are_recorded_per_language(standin: BotApiStandIn, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="keys", description="키 등록")])
    await bot.set_my_commands(
        [BotCommand(command="keys", description="register keys")], language_code="en"
    )

    assert standin.commands() == [{"command": "keys", "description": "키 등록"}]
    assert standin.commands("en") == [{"command": "keys", "description": "register keys"}]
    [command] = await bot.get_my_commands(language_code="en")
    assert command.description == "register keys"


async def test_api_errors_have_telegram_shapes(standin: BotApiStandIn, bot: Bot) -> None:
    user = standin.user(USER_ID, "Minji")
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER_ID, 999)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(123, "nobody")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER_ID, "price < 5 <b>x", parse_mode="HTML")
    sent = await bot.send_message(USER_ID, "same")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("same", chat_id=USER_ID, message_id=sent.message_id)
    user.block()
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(USER_ID, "hello?")

    me = await bot.get_me()
    assert me.is_bot and me.id == standin.bot_id


async def test_wrong_token_and_unknown_method(standin: BotApiStandIn) -> None:
    intruder = Bot("42:wrong-token", session=standin.session())
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await intruder.get_me()
    finally:
        await intruder.session.close()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{standin.base_url}/bot{standin.token}/sendSticker") as response,
    ):
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }
    assert standin.token not in repr(standin)
    assert all(standin.token not in str(call) for call in standin.calls)


async def test_urlencoded_and_json_requests_are_understood(standin: BotApiStandIn) -> None:
    user = standin.user(USER_ID, "Minji")
    url = f"{standin.base_url}/bot{standin.token}/sendMessage"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data={"chat_id": str(USER_ID), "text": "form"}) as response:
            body = await response.json()
            assert body["ok"] is True
            assert body["result"]["from"]["is_bot"] is True
            assert body["result"]["chat"] == {
                "id": USER_ID,
                "type": "private",
                "first_name": "Minji",
            }
        async with http.post(url, json={"chat_id": USER_ID, "text": "json"}) as response:
            assert (await response.json())["result"]["text"] == "json"

    assert [m.text for m in user.bot_messages()] == ["form", "json"]
    assert [c.params["chat_id"] for c in standin.calls_to("sendMessage")] == [str(USER_ID)] * 2

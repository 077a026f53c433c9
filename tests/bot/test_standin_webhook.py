"""Webhook delivery: the stand-in POSTs updates to aiogram's webhook handler over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramConflictError
from aiogram.types import Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.standin import BotApiStandIn

SECRET = "hook-secret_123"
USER_ID = 8001


@dataclass
class Webhook:
    standin: BotApiStandIn
    bot: Bot
    url: str


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    router = Router()

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    async with BotApiStandIn() as standin:
        bot = Bot(standin.token, session=standin.session())
        app = web.Application()
        SimpleRequestHandler(dispatcher, bot, secret_token=SECRET).register(app, path="/tg")
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield Webhook(standin, bot, f"http://127.0.0.1:{port}/tg")
        finally:
            await runner.cleanup()
            await bot.session.close()


async def test_updates_are_pushed_with_the_secret_header(webhook: Webhook) -> None:
    standin, bot = webhook.standin, webhook.bot
    user = standin.user(USER_ID, "Minji", language_code="en")
    await bot.set_webhook(webhook.url, secret_token=SECRET)

    await user.send_text("hello")
    reply = await user.wait_for_bot_message("echo: hello")

    assert reply.sender == "bot"
    [delivery] = standin.webhook_deliveries
    assert delivery.status == 200
    assert standin.pending_update_count == 0
    assert standin.webhook_url == webhook.url
    with pytest.raises(TelegramConflictError):
        await bot.get_updates()


async def test_wrong_secret_is_refused_and_retried_until_fixed(webhook: Webhook) -> None:
    standin, bot = webhook.standin, webhook.bot
    user = standin.user(USER_ID, "Minji")
    await bot.set_webhook(webhook.url, secret_token="not-the-secret")

    await user.send_text("hello")
    await standin.wait_until(lambda: len(standin.webhook_deliveries) >= 2)

    assert {d.status for d in standin.webhook_deliveries} == {401}
    assert standin.pending_update_count == 1  # kept, as Telegram keeps undelivered updates
    info = await bot.get_webhook_info()
    assert info.last_error_message is not None and "401" in info.last_error_message

    await bot.set_webhook(webhook.url, secret_token=SECRET)
    await user.wait_for_bot_message("echo: hello")
    assert standin.webhook_deliveries[-1].status == 200


async def test_updates_queued_before_the_webhook_is_set_are_delivered(webhook: Webhook) -> None:
    standin, bot = webhook.standin, webhook.bot
    user = standin.user(USER_ID, "Minji")
    await user.send_text("early")
    assert standin.pending_update_count == 1

    await bot.set_webhook(webhook.url, secret_token=SECRET)

    await user.wait_for_bot_message("echo: early")
    await bot.delete_webhook()
    assert standin.webhook_url is None
    await user.send_text("late")
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.text == "late"

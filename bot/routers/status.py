"""`/status`, `/orders`, `/log` — always the asking user's own data only."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.texts import Lang
from bot.views import kst_midnight, log_message, orders_message, status_message
from bot.watchers import WatcherSupervisor
from storage.facade import Storage
from storage.records import UserRecord


async def status(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor,
) -> None:
    keys = await storage.key_sets.get(user.id, user.active_environment)
    today = await storage.orders.since(user.id, kst_midnight(datetime.now(UTC)))
    await message.answer(
        status_message(lang, user, keys, watchers.connection_state(user.id), len(today))
    )


async def orders(message: Message, user: UserRecord, lang: Lang, storage: Storage) -> None:
    await message.answer(orders_message(lang, await storage.orders.recent(user.id, 10)))


async def log(message: Message, user: UserRecord, lang: Lang, storage: Storage) -> None:
    await message.answer(log_message(lang, await storage.alerts.recent(user.id, 20)))


def build_router() -> Router:
    router = Router(name="status")
    router.message.register(status, Command("status"))
    router.message.register(orders, Command("orders"))
    router.message.register(log, Command("log"))
    return router

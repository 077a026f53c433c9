"""`/confirm`, `/digest` and `/afterhours`: the user's switches of SPEC section 15."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.texts import Lang, t
from kis.env import Environment
from storage.facade import Storage
from storage.options import DEFAULT_CONFIRM_SECONDS, MAX_CONFIRM_SECONDS, MIN_CONFIRM_SECONDS
from storage.records import UserRecord


def _words(command: CommandObject) -> list[str]:
    return (command.args or "").strip().lower().split()


async def _show(message: Message, lang: Lang, name: str, on: bool) -> None:
    """`/digest`, `/afterhours` alone: whether it is on, and how to change it."""
    state = t(lang, f"{name}.state_on" if on else f"{name}.state_off")
    await message.answer(f"{state}\n{t(lang, f'{name}.usage')}")


async def confirm_mode(
    message: Message, command: CommandObject, user: UserRecord, lang: Lang, storage: Storage
) -> None:
    words = _words(command)
    usage = t(lang, "confirm.usage", low=MIN_CONFIRM_SECONDS, high=MAX_CONFIRM_SECONDS,
              default=DEFAULT_CONFIRM_SECONDS)
    if not words:
        seconds = (await storage.options.get(user.id)).confirm_seconds
        state = (t(lang, "confirm.state_off") if seconds is None
                 else t(lang, "confirm.state_on", seconds=seconds))
        await message.answer(f"{state}\n{usage}")
        return
    if words == ["off"]:
        await storage.options.set_confirm(user.id, None)
        await storage.audit.record(user.id, "confirm.off")
        await message.answer(t(lang, "confirm.off"))
        return
    if words[0] != "on" or len(words) > 2:
        await message.answer(usage)
        return
    seconds = DEFAULT_CONFIRM_SECONDS
    if len(words) == 2:
        raw = words[1].removesuffix("s")
        if not raw.isdigit() or not MIN_CONFIRM_SECONDS <= int(raw) <= MAX_CONFIRM_SECONDS:
            await message.answer(usage)
            return
        seconds = int(raw)
    await storage.options.set_confirm(user.id, seconds)
    await storage.audit.record(user.id, "confirm.on", {"seconds": seconds})
    await message.answer(t(lang, "confirm.on", seconds=seconds))


async def digest(
    message: Message, command: CommandObject, user: UserRecord, lang: Lang, storage: Storage
) -> None:
    words = _words(command)
    if not words:
        await _show(message, lang, "digest", (await storage.options.get(user.id)).digest)
        return
    if words not in (["on"], ["off"]):
        await message.answer(t(lang, "digest.usage"))
        return
    on = words == ["on"]
    await storage.options.set_digest(user.id, on)
    await storage.audit.record(user.id, "digest.on" if on else "digest.off")
    await message.answer(t(lang, "digest.on" if on else "digest.off"))


async def afterhours(
    message: Message, command: CommandObject, user: UserRecord, lang: Lang, storage: Storage
) -> None:
    words = _words(command)
    if not words:
        on = (await storage.options.get(user.id)).afterhours_reserve
        await _show(message, lang, "afterhours", on)
        return
    if words == ["off"]:
        await storage.options.set_afterhours(user.id, False)
        await storage.audit.record(user.id, "afterhours.off")
        await message.answer(t(lang, "afterhours.off"))
        return
    if words != ["reserve"]:
        await message.answer(t(lang, "afterhours.usage"))
        return
    if user.active_environment is not Environment.REAL:
        # KIS.md section 14: reservation orders have no paper TR.
        await message.answer(t(lang, "afterhours.paper"))
        return
    await storage.options.set_afterhours(user.id, True)
    await storage.audit.record(user.id, "afterhours.reserve")
    await message.answer(t(lang, "afterhours.on"))


def build_router() -> Router:
    router = Router(name="options")
    router.message.register(confirm_mode, Command("confirm"))
    router.message.register(digest, Command("digest"))
    router.message.register(afterhours, Command("afterhours"))
    return router

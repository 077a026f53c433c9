"""Several accounts through the chat (SPEC section 16), over the Bot API stand-in, the
real polling loop, the hook endpoint and the KIS simulator: register two accounts with
`/keys`, list them with `/accounts`, route alerts by name, to all and by default,
change the default, delete one with a code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.standin import SimUser
from kis.sim import KisSimulator, SimAccount, demo_account, generate_accounts

from .test_bot_e2e import (
    CODE,
    Stack,
    _hook_url,
    _post_alert,
    _user_id,
    main_account,
    running_stack,
    say,
)

ISA = generate_accounts(1, prefix="isa")[0]
WAIT = 15.0


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    sim = KisSimulator([demo_account(), ISA])
    async with running_stack(tmp_path, sim=sim) as running:
        yield running


async def register(user: SimUser, command: str, sim: SimAccount, first_prompt: str) -> str:
    """`/keys …` for `sim`'s keys; returns the checklist's text."""
    await say(user, command, first_prompt)
    mark = user.mark()
    await user.send_text(sim.app_key)
    await user.wait_for_bot_message("2/5", after=mark)
    mark = user.mark()
    await user.send_text(sim.app_secret)
    await user.wait_for_bot_message("3/5", after=mark)
    await say(user, sim.account_number, "4/5")
    await say(user, sim.hts_id, "5/5")
    mark = user.mark()
    await user.press("모의투자 (Paper)")
    code_message = await user.wait_for_bot_message("moahook", after=mark)
    found = CODE.search(code_message.text)
    assert found is not None
    mark = user.mark()
    await user.send_text(found.group(1))
    checklist = await user.wait_for_bot_message(
        lambda m: "⏳" not in m.text and ("✅" in m.text or "❌" in m.text), after=mark,
        timeout=WAIT,
    )
    return checklist.text


def canos(stack: Stack) -> list[str]:
    return sorted(order.cano for order in stack.sim.orders)


async def test_two_accounts_registered_in_the_chat_route_alerts_by_name_all_and_default(
    stack: Stack,
) -> None:
    user = stack.standin.user(7101, "Two", language_code="en")
    await say(user, "/start", "moahook")
    first = await register(user, "/keys", demo_account(), "1/5")  # the first: main
    assert first.count("✅") == 3, first
    summary = [m.text for m in user.bot_messages() if "Keys for account main" in m.text]
    assert summary, "the first keys say which account they go to"
    second = await register(user, "/keys isa", ISA, "Keys for account isa")
    assert second.count("✅") == 3, second
    user_id = await _user_id(stack, user)
    accounts = await stack.storage.accounts.for_user(user_id)
    assert [(a.name, a.is_default) for a in accounts] == [("main", True), ("isa", False)]
    assert all(stack.watchers.is_ready(a.id) for a in accounts)

    listing = await say(user, "/accounts", "2 accounts")
    assert "⭐ main — paper trading" in listing.text and "• isa — paper trading" in listing.text
    assert ISA.account_number in listing.text and "checks passed" in listing.text

    hook = await _hook_url(stack, user)
    mark = user.mark()
    await _post_alert(hook, '{"ticker":"005930","action":"buy","quantity":"1",'
                            '"account":"all","id":"a1"}')
    await user.wait_for_bot_message("accepted (paper trading · isa)", after=mark, timeout=WAIT)
    await user.wait_for_bot_message("accepted (paper trading · main)", after=mark, timeout=WAIT)
    assert canos(stack) == sorted([demo_account().cano, ISA.cano])

    await _post_alert(hook, '{"ticker":"005930","action":"buy","quantity":"2",'
                            '"account":"ISA","id":"a2"}')
    await user.wait_for_bot_message(lambda m: "isa" in m.text and "2 sh" in m.text,
                                    after=mark, timeout=WAIT)
    assert [o.qty for o in stack.sim.orders if o.cano == ISA.cano] == [1, 2]

    await say(user, "/accounts default isa", "Default account: isa")
    mark = user.mark()
    await _post_alert(hook, '{"ticker":"005930","action":"buy","quantity":"3","id":"a3"}')
    await user.wait_for_bot_message(lambda m: "isa" in m.text and "3 sh" in m.text,
                                    after=mark, timeout=WAIT)
    assert [o.qty for o in stack.sim.orders if o.cano == ISA.cano] == [1, 2, 3]
    orders = await say(user, "/orders", "Last")
    assert "[isa]" in orders.text and "[main]" in orders.text
    log = await say(user, "/log", "Last")
    assert log.text.count("[isa]") == 3 and log.text.count("[main]") == 1

    # Deleting an account takes a code; its alerts are refused by name afterwards.
    mark = user.mark()
    await user.send_text("/accounts delete main")
    await user.wait_for_bot_message("To delete account main", after=mark)
    code_message = await user.wait_for_bot_message("moahook code", after=mark)
    code = CODE.search(code_message.text)
    assert code is not None
    await say(user, code.group(1), "Account main and its keys are deleted")
    remaining = await stack.storage.accounts.for_user(user_id)
    assert [a.name for a in remaining] == ["isa"]
    mark = user.mark()
    await _post_alert(hook, '{"ticker":"005930","action":"buy","quantity":"1",'
                            '"account":"main","id":"a4"}')
    refused = await user.wait_for_bot_message("Order refused", after=mark, timeout=WAIT)
    assert "no account named 'main'" in refused.text
    assert len(stack.sim.orders) == 4


async def test_keys_asks_which_account_once_there_are_keys_and_takes_a_button(
    stack: Stack,
) -> None:
    user = stack.standin.user(7102, "Ask", language_code="en")
    await register(user, "/keys", demo_account(), "1/5")
    asked = await say(user, "/keys", "Which account")
    markup = next(c for c in stack.standin.calls_to("sendMessage")
                  if "Which account" in c.params.get("text", ""))
    rows = markup.json_param("reply_markup")["inline_keyboard"]  # type: ignore[index]
    assert [row[0]["text"] for row in rows] == ["main"] and "isa" in asked.text
    mark = user.mark()
    await user.press("main")
    await user.wait_for_bot_message("Keys for account main", after=mark)
    await user.wait_for_bot_message("1/5", after=mark)
    mark = user.mark()
    await user.send_text("bad name!")  # at the App Key step: neither a key nor a name
    await user.wait_for_bot_message("not an App Key", after=mark)


async def test_mode_switches_the_named_account_only(stack: Stack) -> None:
    user = stack.standin.user(7103, "Mode", language_code="en")
    await register(user, "/keys", demo_account(), "1/5")
    await register(user, "/keys isa", ISA, "Keys for account isa")
    user_id = await _user_id(stack, user)
    await say(user, "/real isa", "needs real keys")  # isa has no validated real keys
    shown = await say(user, "/mode isa", "Account isa: paper trading")
    assert "Real keys: none" in shown.text
    main = await main_account(stack, user_id)
    account = await stack.storage.accounts.get(main)
    assert account is not None and account.name == "main"

"""The dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
driven through chromedriver: Telegram sign-in and its refusals, key registration with
the code from the chat, an alert appearing in the orders view, no JavaScript errors,
and the screenshots shown in the README.

Without Chromium the module is skipped with one line; `.ci/run` sets
MOAHOOK_TEST_REQUIRE_BROWSER=1, which turns that skip into a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.standin.webapp import launch_url
from kis.sim import DEMO_APP_SECRET, demo_account

from .support import Stack, make_init_data, running_stack, tg_user
from .webdriver import Session, chromium, find_browser

BROWSER = find_browser()
if BROWSER is None:
    reason = (
        "browser tests: no chromium/chromedriver on PATH "
        "(apt-get install -y chromium chromium-driver)"
    )
    if os.environ.get("MOAHOOK_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " — required here (MOAHOOK_TEST_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

USER_ID = 7001
PHONE = (390, 844)
DESKTOP = (1280, 900)
VISIBLE = "const e = document.querySelector(arguments[0]); return !!e && !e.hidden;"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Session]:
    assert BROWSER is not None
    async with chromium(BROWSER) as session:
        await session.set_window(*PHONE)
        yield session


def mini_app_url(stack: Stack, init_data: str, visit: int = 0) -> str:
    """The dashboard as Telegram opens it: initData in the fragment. The query makes each
    visit a real page load (a changed fragment alone would not reload the page)."""
    return launch_url(f"{stack.base_url}/app?visit={visit}", init_data)


async def test_refuses_tampered_stale_and_foreign_init_data_then_signs_in(
    stack: Stack, browser: Session
) -> None:
    token = stack.bot_token
    valid = make_init_data(token, tg_user(USER_ID))
    bad = {
        "tampered": valid.replace("trader_kim", "trader_lee"),
        "stale": make_init_data(token, tg_user(USER_ID), auth_date=int(time.time()) - 3700),
        "another bot": make_init_data("987654:someone-elses-bot", tg_user(USER_ID)),
    }
    for visit, (case, init) in enumerate(bad.items(), start=1):
        await browser.open(mini_app_url(stack, init, visit))
        notice = await browser.wait_for(
            "const n = document.getElementById('notice');"
            "return !n.hidden && n.textContent;"
        )
        assert "텔레그램 로그인 실패" in str(notice), case
        assert await browser.run(VISIBLE, "#signin-form"), case
        assert not await browser.run(VISIBLE, "#app"), case
    assert await stack.services.storage.users.by_telegram_id(USER_ID) is None
    await browser.console_errors()  # the refusals' 401s are logged as failed loads

    await browser.open(mini_app_url(stack, valid, 99))
    await browser.wait_for(VISIBLE, "#app")
    await browser.wait_for("return document.getElementById('status-env').textContent")
    assert "모의투자" in str(await (await browser.find("#status-env")).text())
    assert await browser.console_errors() == []


async def test_keys_through_the_page_with_the_chat_code_then_an_alert_in_orders(
    stack: Stack, browser: Session
) -> None:
    account = demo_account()
    chat = stack.user(USER_ID)
    await browser.open(mini_app_url(stack, make_init_data(stack.bot_token, tg_user(USER_ID))))
    await browser.wait_for(VISIBLE, "#app")

    for field, value in (
        ("#key-app-key", account.app_key), ("#key-app-secret", account.app_secret),
        ("#key-account", account.account_number), ("#key-hts-id", account.hts_id),
    ):
        await (await browser.find(field)).type(value)
    mark = chat.mark()
    await (await browser.find("#keys-send-code")).click()
    code = await stack.code_for(chat, mark)
    await browser.wait_for(VISIBLE, "#keys-code .code-input")
    await (await browser.find("#keys-code .code-input")).type(code)
    await (await browser.find("#keys-code button[type=submit]")).click()

    # The checklist, live on the page: three ✅ once KIS (the simulator) has answered.
    await browser.wait_for(
        "return document.querySelectorAll('#checklist-paper li[data-status=ok]').length === 3",
        timeout=20,
    )
    assert await browser.run("return document.getElementById('key-app-secret').value") == ""
    page_text = str(await browser.run("return document.documentElement.outerHTML"))
    assert DEMO_APP_SECRET not in page_text and account.app_key not in page_text
    assert DEMO_APP_SECRET not in stack.every_bot_api_request()
    await browser.wait_for(
        "return document.getElementById('status-fill').textContent.includes('연결됨')"
    )

    # A TradingView alert to the URL the page shows → the order, filled, in the orders view.
    hook = str(await (await browser.find("#webhook-url")).text())
    assert hook.startswith(stack.public_url + "/hook/")
    alert = b'{"ticker":"KRX:005930","action":"buy","quantity":"3","id":"browser-1"}'
    refused = b'{"ticker":"KRX:035720","action":"sell","quantity":"5","id":"browser-2"}'
    for body in (alert, refused):
        async with stack.http.post(hook, data=body) as answer:
            assert answer.status == 200
    await browser.wait_for(
        "return !!document.querySelector("
        "'#orders-list li[data-symbol=\"005930\"][data-status=filled]')",
        timeout=20,
    )
    row = str(await (await browser.find("#orders-list li[data-symbol='005930']")).text())
    assert "매수" in row and "3주" in row and "체결 3/3주" in row
    await browser.wait_for(
        "return !!document.querySelector('#alerts-list li[data-status=done]')"
    )
    # The refused one in the alert log, with its reason.
    reason = await browser.wait_for(
        "const r = document.querySelector('#alerts-list li[data-status=refused] .reason');"
        "return r && r.textContent;"
    )
    assert "cannot sell 035720: no shares held" in str(reason)
    assert await browser.console_errors() == []

    await save_screenshots(browser)
    assert await browser.console_errors() == []


async def save_screenshots(browser: Session) -> None:
    """Phone and desktop pictures; written to MOAHOOK_SCREENSHOT_DIR when it is set (the
    README's pictures under docs/ come from there)."""
    target = os.environ.get("MOAHOOK_SCREENSHOT_DIR")
    await browser.set_window(*PHONE)
    await browser.run("document.getElementById('notice').hidden = true; window.scrollTo(0, 0)")
    phone = await browser.screenshot()
    desktop = await browser.full_screenshot(DESKTOP[0])
    assert phone.startswith(b"\x89PNG") and desktop.startswith(b"\x89PNG")
    if target:
        write_pictures(Path(target), {"dashboard-phone.png": phone,
                                      "dashboard-desktop.png": desktop})


def write_pictures(folder: Path, pictures: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in pictures.items():
        (folder / name).write_bytes(data)


async def test_plain_browser_sign_in_with_the_chat_code_language_switch_and_sign_out(
    stack: Stack, browser: Session
) -> None:
    chat = stack.user(USER_ID, username="Kim_Browser")
    mark = chat.mark()
    await chat.send_text("/start")
    await chat.wait_for_bot_message("moahook", 10, after=mark)

    await browser.open(f"{stack.base_url}/app")
    await browser.wait_for(VISIBLE, "#signin-form")
    await (await browser.find("#signin-user")).type("@kim_browser")
    mark = chat.mark()
    await (await browser.find("#signin-form button[type=submit]")).click()
    code = await stack.code_for(chat, mark)
    await browser.wait_for(VISIBLE, "#signin-code-form")
    await (await browser.find("#signin-code")).type(code)
    await (await browser.find("#signin-code-form button[type=submit]")).click()
    await browser.wait_for(VISIBLE, "#app")
    await browser.wait_for("return document.getElementById('status-env').textContent")

    # The stored language is Korean; the switch turns the page (and /lang) to English.
    assert "상태" in str(await (await browser.find("#status h2")).text())
    await (await browser.find("#lang-switch")).click()
    await browser.wait_for(
        "return document.querySelector('#status h2').textContent === 'Status'"
    )
    await browser.wait_for(
        "return document.getElementById('status-paused').textContent === 'running'"
    )
    user = await stack.services.storage.users.by_telegram_id(USER_ID)
    assert user is not None and user.language == "en"

    # Pause from the page, then sign out: the session is gone on the server too.
    await (await browser.find("#pause-toggle")).click()
    await browser.wait_for(
        "return document.getElementById('status-paused').textContent.startsWith('paused')"
    )
    assert (await stack.services.storage.users.by_telegram_id(USER_ID)).paused  # type: ignore[union-attr]
    await (await browser.find("#sign-out")).click()
    await browser.wait_for(VISIBLE, "#signin-form")
    await browser.open(f"{stack.base_url}/app?again=1")
    await browser.wait_for(VISIBLE, "#signin-form")
    assert not await browser.run(VISIBLE, "#app")
    assert await browser.console_errors() == []

"""`/status` → Re-check: the three key checks again with the stored keys (no 2FA, paced
per user), and a wrong account number diagnosed as such — end to end through aiogram,
the Bot API stand-in and the KIS simulator, plus the pure parts."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from bot.checks import RecheckCooldown
from kis.env import Environment
from kis.errors import KisApiError, KisServerError, KisTransportError
from kis.keycheck import account_refused
from kis.sim import demo_account


def _e2e_harness() -> ModuleType:
    """The stack of test_bot_e2e.py (aiogram + stand-in + simulator + SQLite), loaded by
    path: with --import-mode=importlib the tests directory is not a package."""
    name = "bot_e2e_harness_for_recheck"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).with_name("test_bot_e2e.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


e2e = _e2e_harness()
WRONG_ACCOUNT = "87654321-01"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[object]:
    async with e2e.running_stack(tmp_path) as running:
        yield running


async def _user_id(stack: object, telegram_id: int) -> int:
    user = await stack.storage.users.by_telegram_id(telegram_id)  # type: ignore[attr-defined]
    assert user is not None
    return int(user.id)


# --- end to end -------------------------------------------------------------------------


async def test_wrong_account_number_is_refused_with_the_account_fix(stack: object) -> None:
    user = stack.standin.user(7801, "Kim", language_code="en")  # type: ignore[attr-defined]
    account = demo_account()
    code = await e2e.enter_keys(
        user, app_key=account.app_key, app_secret=account.app_secret,
        account=WRONG_ACCOUNT, hts_id=account.hts_id, env_button="모의투자 (Paper)",
    )
    mark = user.mark()
    await user.send_text(code)
    checklist = await user.wait_for_bot_message(
        lambda m: "⏳" not in m.text and "❌" in m.text, after=mark, timeout=15,
    )
    assert "✅ Environment/token" in checklist.text
    assert f"❌ Account: KIS refused account {WRONG_ACCOUNT}" in checklist.text
    assert "INVALID_CHECK_ACNO" in checklist.text  # KIS's own words, shown
    assert "product code" in checklist.text and "/keys again" in checklist.text
    assert "failed for now" not in checklist.text
    keys = await stack.storage.key_sets.get(  # type: ignore[attr-defined]
        await _user_id(stack, 7801), Environment.PAPER
    )
    assert keys is not None and not keys.validated


async def test_wrong_account_number_in_korean(stack: object) -> None:
    user = stack.standin.user(7802, "Park", language_code="ko")  # type: ignore[attr-defined]
    account = demo_account()
    code = await e2e.enter_keys(
        user, app_key=account.app_key, app_secret=account.app_secret,
        account=WRONG_ACCOUNT, hts_id=account.hts_id, env_button="모의투자 (Paper)",
    )
    mark = user.mark()
    await user.send_text(code)
    checklist = await user.wait_for_bot_message(
        lambda m: "⏳" not in m.text and "❌" in m.text, after=mark, timeout=15,
    )
    assert f"❌ 계좌: {WRONG_ACCOUNT} 조회를 KIS가 거부했습니다" in checklist.text
    assert "상품코드" in checklist.text and "일시적" not in checklist.text


async def test_recheck_turns_a_temporary_failure_into_validated_keys(stack: object) -> None:
    sim = stack.sim  # type: ignore[attr-defined]
    user = stack.standin.user(7803, "Lee", language_code="en")  # type: ignore[attr-defined]
    # KIS's gateway fails every try of the balance inquiry (the client retries twice).
    sim.faults.add("balance", "OPSQ0001", count=3)
    checklist = await e2e.register(stack, user)
    assert "❌ Account: the balance inquiry failed for now" in checklist.text
    assert "/status → Re-check" in checklist.text
    user_id = await _user_id(stack, 7803)
    assert not stack.watchers.is_ready(await e2e.main_account(stack, user_id))  # type: ignore[attr-defined, arg-type]

    status = await e2e.say(user, "/status", "Status")
    assert "checks failed" in status.text
    mark, before = user.mark(), len(user.bot_messages())
    await user.press("Re-check")
    rechecked = await user.wait_for_bot_message(
        lambda m: "KIS checks" in m.text and "⏳" not in m.text, after=mark, timeout=15,
    )
    assert rechecked.text.count("✅") == 3, rechecked.text
    keys = await stack.storage.key_sets.get(user_id, Environment.PAPER)  # type: ignore[attr-defined]
    assert keys is not None and keys.validated
    assert stack.watchers.is_ready(await e2e.main_account(stack, user_id))  # type: ignore[attr-defined, arg-type]
    # No 2FA code was asked for: nothing but the check results changed.
    assert not any("6-digit" in m.text for m in user.bot_messages()[before:])


async def test_recheck_is_paced_and_keeps_a_live_fill_notice_connection(
    stack: object,
) -> None:
    sim = stack.sim  # type: ignore[attr-defined]
    user = stack.standin.user(7804, "Cho", language_code="en")  # type: ignore[attr-defined]
    assert (await e2e.register(stack, user)).text.count("✅") == 3
    user_id = await _user_id(stack, 7804)

    status = await e2e.say(user, "/status", "Status")
    assert "checks passed" in status.text
    # A resubscription now would be refused: the re-check must not restart the live one.
    sim.faults.add("ws", "refuse_tr_key")
    mark = user.mark()
    await user.press("Re-check")
    rechecked = await user.wait_for_bot_message(
        lambda m: "KIS checks" in m.text and "⏳" not in m.text, after=mark, timeout=15,
    )
    assert rechecked.text.count("✅") == 3, rechecked.text
    assert sim.faults.pending("ws"), "the live fill-notice connection was restarted"
    sim.faults.clear()
    assert stack.watchers.is_ready(await e2e.main_account(stack, user_id))  # type: ignore[attr-defined, arg-type]

    # A second press within the minute: a clear message, no second check.
    mark, before = user.mark(), len(user.bot_messages())
    await user.press("Re-check")
    wait = await user.wait_for_bot_message("You can re-check in", after=mark)
    assert "once a minute" in wait.text
    assert not any("KIS checks" in m.text for m in user.bot_messages()[before:])


async def test_status_without_keys_has_no_recheck_button(stack: object) -> None:
    user = stack.standin.user(7806, "Ahn", language_code="ko")  # type: ignore[attr-defined]
    await e2e.say(user, "/status", "상태")
    sent = [c for c in stack.standin.calls_to("sendMessage")  # type: ignore[attr-defined]
            if "상태" in c.params.get("text", "")]
    assert sent and "reply_markup" not in sent[-1].params
    with pytest.raises(LookupError):
        await user.press("다시 점검 (Re-check)")


async def test_status_with_keys_shows_the_recheck_button_in_korean(stack: object) -> None:
    user = stack.standin.user(7807, "Han", language_code="ko")  # type: ignore[attr-defined]
    await e2e.register(stack, user)
    await e2e.say(user, "/status", "상태")
    call = [c for c in stack.standin.calls_to("sendMessage")  # type: ignore[attr-defined]
            if "상태" in c.params.get("text", "")][-1]
    rows = call.json_param("reply_markup")["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == ["다시 점검 (Re-check)"]
    assert rows[0][0]["callback_data"] == "recheck:paper"


# --- pure parts -------------------------------------------------------------------------


def _api_error(msg_cd: str, msg1: str) -> KisApiError:
    return KisServerError(rt_cd="2", msg_cd=msg_cd, msg1=msg1, tr_id="VTTC8434R",
                          http_status=500)


@pytest.mark.parametrize("msg1", [
    "ERROR : INPUT INVALID_CHECK_ACNO",
    "ERROR : INPUT INVALID_CHECK_ACNT_PRDT_CD",
    "error : input invalid_check_cano",
])
def test_input_check_errors_on_account_fields_mean_a_wrong_account(msg1: str) -> None:
    assert account_refused(_api_error("OPSQ2000", msg1))


@pytest.mark.parametrize("error", [
    _api_error("OPSQ0001", "시스템 오류"),
    _api_error("OPSQ2001", "ERROR : INPUT INVALID_CHECK_INQR_DVSN"),
    KisTransportError("VTTC8434R: ConnectTimeout"),
])
def test_other_errors_are_not_a_wrong_account(error: Exception) -> None:
    assert not account_refused(error)  # type: ignore[arg-type]


def test_cooldown_allows_one_recheck_a_minute_per_user() -> None:
    now = [1000.0]
    cooldown = RecheckCooldown(60.0, clock=lambda: now[0])
    assert cooldown.try_start(1) == 0
    assert cooldown.try_start(2) == 0  # another user is not held back
    now[0] += 0.4
    assert cooldown.try_start(1) == 60  # whole seconds, rounded up
    now[0] += 45.0
    assert cooldown.try_start(1) == 15
    now[0] += 15.0
    assert cooldown.try_start(1) == 0
    assert cooldown.try_start(1) == 60


def test_cooldown_forgets_users_whose_minute_is_over() -> None:
    now = [0.0]
    cooldown = RecheckCooldown(60.0, clock=lambda: now[0])
    for user_id in range(100):
        cooldown.try_start(user_id)
    now[0] += 61.0
    cooldown.try_start(1000)
    assert "users=1" in repr(cooldown)

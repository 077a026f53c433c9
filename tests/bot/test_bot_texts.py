"""The catalogs: same keys and placeholders in Korean and English, contract strings."""

from __future__ import annotations

import ast
import inspect
import re
import string
from types import ModuleType

import pytest

from bot.texts import BUTTON_PAPER, BUTTON_REAL, EN, KO, parse_lang, t


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_catalogs_have_identical_key_sets() -> None:
    assert set(KO) == set(EN)


@pytest.mark.parametrize("key", sorted(KO))
def test_each_text_has_the_same_placeholders_in_both_languages(key: str) -> None:
    assert _fields(KO[key]) == _fields(EN[key])


def test_environment_buttons_read_exactly_as_the_spec_says() -> None:
    assert BUTTON_PAPER == "모의투자 (Paper)"
    assert BUTTON_REAL == "실전투자 (Real)"


def test_start_names_the_three_steps_and_shows_the_url_in_both_languages() -> None:
    for lang in ("ko", "en"):
        text = t(lang, "start", url="http://x/hook/abc")
        assert "/keys" in text and "/webhook" in text and "http://x/hook/abc" in text
        assert "KIS" in text
        assert text.index("/keys") < text.index("/webhook")


def test_help_lists_every_command() -> None:
    commands = ["/start", "/help", "/keys", "/mode", "/paper", "/real", "/webhook", "/status",
                "/orders", "/log", "/pause", "/resume", "/delete", "/lang", "/cancel"]
    for lang in ("ko", "en"):
        text = t(lang, "help")
        for command in commands:
            assert command in text, (lang, command)


def test_language_codes_from_telegram_map_to_ko_or_en() -> None:
    assert parse_lang("ko") == "ko"
    assert parse_lang("ko-KR") == "ko"
    assert parse_lang("en-US") == "en"
    assert parse_lang("EN") == "en"
    assert parse_lang("de") is None
    assert parse_lang(None) is None


def test_a_missing_key_is_an_error_not_an_empty_message() -> None:
    with pytest.raises(KeyError):
        t("en", "no.such.text")


# --- fix lines and commands ---------------------------------------------------------------


def _fix_lines(lang: str) -> list[tuple[str, str]]:
    catalog = KO if lang == "ko" else EN
    marker = "고치기:" if lang == "ko" else "Fix:"
    return [
        (key, line)
        for key, text in catalog.items()
        for line in text.splitlines()
        if marker in line
    ]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fix_lines_that_send_the_user_to_status_name_the_recheck_button(lang: str) -> None:
    """/status only shows saved results; the checks run again from its Re-check button."""
    button = t(lang, "status.recheck_button")  # type: ignore[arg-type]
    lines = _fix_lines(lang)
    to_status = [(key, line) for key, line in lines if "/status" in line]
    assert len(to_status) >= 4
    for key, line in to_status:
        assert f"/status → {button}" in line, key
    assert not any("/status 로 다시" in line or "again with /status" in line
                   for _, line in lines)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_every_command_a_text_mentions_exists(lang: str) -> None:
    from bot.factory import COMMANDS

    catalog = KO if lang == "ko" else EN
    for key, text in catalog.items():
        for command in re.findall(r"(?<![\w/.])/([a-z_]+)", text):
            assert command in COMMANDS, (key, command)


def test_delete_says_the_webhook_url_changes_too() -> None:
    # confirmed_delete rotates the webhook token as well as forgetting keys and tokens.
    assert "웹훅 주소" in t("ko", "delete.done") and "/webhook" in t("ko", "delete.done")
    assert "webhook URL" in t("en", "delete.done") and "/webhook" in t("en", "delete.done")
    assert "웹훅 주소" in t("ko", "help") and "new webhook URL" in t("en", "help")


# --- every reason the order pipeline can give has a text ---------------------------------


def _refusal_keys_in(module: ModuleType) -> set[str]:
    """Codes and reason keys of every `Refusal(...)` and every `reason_key=...` in a module's
    source (string literals, or module-level constants such as MARKET_CLOSED)."""

    def value(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            found = getattr(module, node.id, None)
            return found if isinstance(found, str) else None
        return None

    keys: set[str] = set()
    source = inspect.getsource(module)
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name == "Refusal":
            for arg in (node.args[0:1] + node.args[2:3]):
                if (text := value(arg)) is not None:
                    keys.add(text)
        if name == "Reason":
            for arg in node.args[1:2]:
                if (text := value(arg)) is not None:
                    keys.add(text)
        for keyword in node.keywords:
            if keyword.arg == "reason_key" and (text := value(keyword.value)) is not None:
                keys.add(text)
    keys.discard("")
    return keys


# Keys the pipeline builds at run time (`kis_ended_{ended}`).
LITERAL_REASON_KEYS = ("kis_ended_rejected", "kis_ended_cancelled")


def test_every_reason_the_pipeline_and_sizing_can_emit_has_ko_and_en_text() -> None:
    from webhook_server import guards, pipeline
    from webhook_server.sizing import RefusalCode

    emitted = {code.value for code in RefusalCode}
    from bot import watchers

    emitted |= _refusal_keys_in(guards) | _refusal_keys_in(pipeline) | _refusal_keys_in(watchers)
    # Markers on accepted/fill notices (their own notice.* lines), not reasons.
    from storage.notices import CHECKED_WITH_KIS, FROM_EXECUTIONS

    emitted -= {CHECKED_WITH_KIS, FROM_EXECUTIONS}
    # The scan found the guard keys, so it reads the sources it is meant to.
    assert {"paused", "no_keys", "fill_not_ready", "stale", "market_closed",
            "quantity_below_one", "not_held", "amount_below_one_share", "earlier_unknown",
            "insufficient_holding", "outcome_unknown", "not_placed", "inquiry_failed",
            "kis_unreachable", "kis_rejected", "internal_error"} <= emitted
    emitted |= set(LITERAL_REASON_KEYS)
    for key in sorted(emitted):
        assert f"reason.{key}" in KO, key
        assert f"reason.{key}" in EN, key


def test_reason_texts_read_without_a_bare_placeholder() -> None:
    params = {"amount": "50,000", "price": "71,500", "detail": "x", "lag": "90",
              "max_lag": "60", "quantity": "7", "sellable": "3", "percent": "10",
              "held": "5", "order_id": "12", "env": "paper", "market": "KRX", "target": "2",
              "opens": "2026-03-09 09:00 KST", "code": "APBK0952",
              "message": "주문가능금액을 초과", "order_no": "0000000001", "alert_id": "3",
              "limit": "1,000,000", "bought": "300,000", "used": "50", "orders": "50",
              "account": "isa"}
    for lang in ("ko", "en"):
        for key in (k for k in KO if k.startswith("reason.")):
            text = t(lang, key, **{n: params[n] for n in _fields(KO[key])})  # type: ignore[arg-type]
            assert text and "{" not in text, (lang, key)

"""The dashboard's pure parts: initData checks, the text catalogue, the JSON views."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.dashboard import PURPOSE_ACTIONS
from bot.standin.webapp import init_data, web_app_user
from bot.texts import CATALOGS as BOT_CATALOGS
from kis.env import Environment
from kis.keycheck import CheckItem, CheckReport, CheckStatus
from kis.secret import Secret
from storage.records import AlertStatus, KeySetRecord, OrderStatus
from webhook_server.dashboard.i18n import CATALOGS, lang_from_accept, parse_lang
from webhook_server.dashboard.initdata import InitDataError, check_init_data
from webhook_server.dashboard.page import STATIC_DIR, script_json
from webhook_server.dashboard.second_factor import PURPOSES
from webhook_server.dashboard.views import keyset_json

TOKEN = "123456:bot-token-for-tests"
NOW = datetime(2026, 5, 11, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def signed(auth_date: datetime, **user: object) -> str:
    return init_data(TOKEN, {**web_app_user(42, "Kim"), **user}, auth_date=int(
        auth_date.timestamp()))


def test_init_data_gives_the_user_when_signed_fresh_and_complete() -> None:
    who = check_init_data(TOKEN, signed(NOW - timedelta(minutes=5), username="Kim_T"),
                          now=NOW, max_age=HOUR)
    assert (who.id, who.username, who.language_code) == (42, "Kim_T", "ko")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (signed(NOW - HOUR - timedelta(seconds=1)), "too old"),
        (signed(NOW + timedelta(minutes=6)), "future"),
        (signed(NOW).replace("Kim", "Lee"), "signature"),
        (init_data("654321:other-bot", web_app_user(42, "Kim"), auth_date=int(NOW.timestamp())),
         "signature"),
        (init_data(TOKEN, None, auth_date=int(NOW.timestamp())), "no user"),
        (signed(NOW) + "%C3%A9", "signature"),
        ("x" * 9000, "too long"),
        ("", "empty"),
    ],
)
def test_init_data_refusals_say_why(raw: str, words: str) -> None:
    with pytest.raises(InitDataError, match=words):
        check_init_data(TOKEN, raw, now=NOW, max_age=HOUR)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    assert CATALOGS["ko"].keys() == CATALOGS["en"].keys()
    for key, text in CATALOGS["ko"].items():
        assert _fields(text) == _fields(CATALOGS["en"][key]), key


def test_every_text_the_page_asks_for_exists() -> None:
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    template = (STATIC_DIR.parent / "templates" / "index.html").read_text(encoding="utf-8")
    # Literal keys; prefixes the page completes ("side." + side) are checked below.
    wanted = {k for k in re.findall(r'\bt\("([a-z_.]+)"', script) if not k.endswith(".")}
    wanted |= set(re.findall(r'data-t="([a-z_.]+)"', template))
    wanted |= {f"order_status.{s.value}" for s in OrderStatus}
    wanted |= {f"alert_status.{s.value}" for s in AlertStatus}
    wanted |= {"side.buy", "side.sell", "check.token", "check.account", "check.fill"}
    assert wanted and wanted <= CATALOGS["ko"].keys()


def test_language_choice() -> None:
    assert parse_lang("en-US") == "en" and parse_lang("ko") == "ko" and parse_lang("de") is None
    assert lang_from_accept("de-DE,en;q=0.8,ko;q=0.5") == "en"
    assert lang_from_accept(None) == "ko" and lang_from_accept("fr") == "ko"


def test_every_dashboard_code_says_in_the_chat_what_it_confirms() -> None:
    assert set(PURPOSE_ACTIONS) == set(PURPOSES)
    for key in PURPOSE_ACTIONS.values():
        assert key in BOT_CATALOGS["ko"] and key in BOT_CATALOGS["en"]


def test_script_json_cannot_close_its_script_block() -> None:
    text = script_json({"x": "</script><script>alert(1)</script>&"})
    assert "<" not in text and ">" not in text and "&" not in text


def _keys(results: dict[str, object] | None, checked: datetime | None) -> KeySetRecord:
    return KeySetRecord(
        user_id=1, environment=Environment.PAPER, app_key=Secret("PSabcdefghijklmnop1234"),
        app_secret=Secret("s" * 180), cano="12345678", product_code="01", hts_id="kim",
        validated=False, check_results=results, checked_at=checked, updated_at=NOW,
    )


def test_keyset_view_masks_the_key_and_never_holds_the_secret() -> None:
    view = keyset_json(_keys(None, None), NOW)
    assert view is not None and view["app_key"] == "****1234"
    assert "s" * 32 not in repr(view) and "PSabcdefgh" not in repr(view)
    assert view["checks"] == {
        "ran": False, "checking": False, "interrupted": False, "ok": False,
        "items": [{"name": n, "status": "skipped", "detail": ""}
                  for n in ("token", "account", "fill")],
        "checked_at": None,
    }


def test_a_check_left_pending_for_long_shows_as_interrupted() -> None:
    running = CheckReport(env=Environment.PAPER, token=CheckItem(CheckStatus.OK)).to_json()
    fresh = keyset_json(_keys(running, NOW - timedelta(seconds=30)), NOW)
    stale = keyset_json(_keys(running, NOW - timedelta(minutes=3)), NOW)
    assert fresh is not None and stale is not None
    assert fresh["checks"]["checking"] is True  # type: ignore[index]
    assert stale["checks"]["checking"] is False  # type: ignore[index]
    assert stale["checks"]["interrupted"] is True  # type: ignore[index]


def test_static_files_ship_in_the_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    for pattern in ("templates/*.html", "static/*.js", "static/*.css", "static/*.svg"):
        assert pattern in pyproject

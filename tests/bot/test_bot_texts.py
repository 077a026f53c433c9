"""The catalogs: same keys and placeholders in Korean and English, contract strings."""

from __future__ import annotations

import string

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

"""Transcript rendering and Telegram's HTML parse mode, as pure functions."""

from __future__ import annotations

import pytest

from bot.standin.html_text import EntityParseError, parse_html
from bot.standin.model import ChatMessage
from bot.standin.transcript import render_transcript


def test_transcript_reads_like_the_chat() -> None:
    messages = [
        ChatMessage(1, "user", "/start"),
        ChatMessage(
            2,
            "bot",
            "환경을 고르세요.\n기본은 모의투자입니다.",
            buttons=(("모의투자 (Paper)", "실전투자 (Real)"),),
        ),
        ChatMessage(2, "user", "모의투자 (Paper)", kind="press"),
        ChatMessage(3, "user", "PSsecretAppKey0123456789", deleted=True),
        ChatMessage(4, "bot", "✅ token\n❌ account", edited=True),
    ]

    assert render_transcript(messages) == (
        "👤 user: /start\n"
        "🤖 bot: 환경을 고르세요.\n"
        "        기본은 모의투자입니다.\n"
        "        [ 모의투자 (Paper) ] [ 실전투자 (Real) ]\n"
        "👤 user: (pressed) [ 모의투자 (Paper) ]\n"
        "👤 user: (deleted by the bot)\n"
        "🤖 bot: ✅ token\n"
        "        ❌ account (edited)\n"
    )


def test_deleted_text_never_appears() -> None:
    rendered = render_transcript([ChatMessage(9, "user", "app-secret-value", deleted=True)])

    assert "app-secret-value" not in rendered


def test_reply_keyboard_rows_are_shown() -> None:
    message = ChatMessage(1, "bot", "choose", keyboard=(("/paper", "/real"),))

    assert render_transcript([message]) == "🤖 bot: choose\n        ⌨ [ /paper ] [ /real ]\n"


def test_html_is_parsed_into_text_and_utf16_entities() -> None:
    text, entities = parse_html('😀 <b>삼성전자</b> &lt;005930&gt; <a href="https://x.y">link</a>')

    assert text == "😀 삼성전자 <005930> link"
    # The emoji is two UTF-16 code units, so bold starts at 3.
    assert entities == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "text_link", "url": "https://x.y", "offset": 17, "length": 4},
    ]


@pytest.mark.parametrize(
    "markup",
    ["price < 5", "<b>unclosed", "<div>x</div>", "<b><i>x</b></i>", "<3"],
)
def test_html_that_telegram_refuses(markup: str) -> None:
    with pytest.raises(EntityParseError):
        parse_html(markup)

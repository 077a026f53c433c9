"""The chat rendered as a person reads it on their phone."""

from __future__ import annotations

from collections.abc import Iterable

from bot.standin.model import ChatMessage

_INDENT = " " * 8  # under the text after "🤖 bot: "


def render_buttons(rows: Iterable[Iterable[str]]) -> list[str]:
    """`[ 모의투자 (Paper) ] [ 실전투자 (Real) ]`, one line per keyboard row."""
    return [" ".join(f"[ {label} ]" for label in row) for row in rows]


def render_message(message: ChatMessage) -> str:
    who = "🤖 bot" if message.sender == "bot" else "👤 user"
    if message.kind == "press":
        return f"{who}: (pressed) [ {message.text} ]"
    if message.deleted:
        # The text is never shown: deleted user messages carried secrets.
        return f"{who}: (deleted by the bot)" if message.sender == "user" else f"{who}: (deleted)"
    lines = message.text.split("\n") or [""]
    if message.edited:
        lines[-1] = f"{lines[-1]} (edited)"
    lines += render_buttons(message.buttons)
    lines += [f"⌨ {line}" for line in render_buttons(message.keyboard)]
    first, *rest = lines
    return "\n".join([f"{who}: {first}", *(f"{_INDENT}{line}" if line else "" for line in rest)])


def render_transcript(messages: Iterable[ChatMessage]) -> str:
    """The whole chat, one entry after another, ending with a newline when not empty."""
    rendered = [render_message(message) for message in messages]
    return "".join(f"{entry}\n" for entry in rendered)

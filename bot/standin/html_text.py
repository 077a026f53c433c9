"""Telegram's HTML parse mode: markup to plain text + entities, rejecting what Telegram rejects.

Offsets and lengths are in UTF-16 code units, as the Bot API counts them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser

_ENTITY_OF_TAG = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML (Telegram answers 400 "can't parse entities")."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    tag: str
    entity: dict[str, object]
    start: int


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.entities: list[dict[str, object]] = []
        self.stack: list[_Open] = []
        self.length = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = _ENTITY_OF_TAG.get(tag)
        if kind is None:
            raise EntityParseError(f'Unsupported start tag "{tag}"')
        values = dict(attrs)
        entity: dict[str, object] = {"type": kind}
        if tag == "span" and values.get("class") != "tg-spoiler":
            raise EntityParseError('Tag "span" must have class "tg-spoiler"')
        if tag == "a":
            entity["url"] = values.get("href") or ""
        if tag == "code" and self.stack and self.stack[-1].tag == "pre":
            # <pre><code class="language-x"> sets the language of the outer pre.
            language = (values.get("class") or "").removeprefix("language-")
            if language:
                self.stack[-1].entity["language"] = language
        if tag == "blockquote" and "expandable" in values:
            entity["type"] = "expandable_blockquote"
        if tag == "tg-emoji":
            entity["custom_emoji_id"] = values.get("emoji-id") or ""
        self.stack.append(_Open(tag, entity, self.length))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1].tag != tag:
            raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{tag}"')
        opened = self.stack.pop()
        if self.length > opened.start:
            opened.entity["offset"] = opened.start
            opened.entity["length"] = self.length - opened.start
            self.entities.append(opened.entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.length += utf16_len(data)


def parse_html(markup: str) -> tuple[str, list[dict[str, object]]]:
    """Plain text and its entities; raises EntityParseError like Telegram would refuse."""
    # A bare "<" must be escaped as &lt;; HTMLParser would quietly keep it as text.
    if _has_stray_angle(markup):
        raise EntityParseError('Unsupported start tag ""')
    parser = _Parser()
    parser.feed(markup)
    parser.close()
    if parser.stack:
        tag = parser.stack[-1].tag
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{tag}"')
    parser.entities.sort(key=_entity_order)
    return "".join(parser.parts), parser.entities


def _entity_order(entity: dict[str, object]) -> tuple[int, int]:
    offset, length = entity["offset"], entity["length"]
    assert isinstance(offset, int) and isinstance(length, int)
    return offset, -length


def _has_stray_angle(markup: str) -> bool:
    """True when a "<" does not open a tag that the parser accepted (e.g. "a < b")."""
    index = markup.find("<")
    while index != -1:
        following = markup[index + 1 : index + 2]
        if not (following.isalpha() or following == "/"):
            return True
        index = markup.find("<", index + 1)
    return False


def escape(text: str) -> str:
    """What a correct bot does to user-provided text before putting it in HTML."""
    return html.escape(text, quote=False)

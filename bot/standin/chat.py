"""Private chats held by the stand-in: messages, keyboards, and their Bot API JSON shapes.

Pure state, no I/O: the server mutates it and wakes waiters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bot.standin.html_text import EntityParseError, parse_html, utf16_len
from bot.standin.model import ChatMessage, Kind, Sender

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64

JsonObject = dict[str, object]


class ApiError(Exception):
    """A Bot API error answer: `{"ok": false, "error_code": ..., "description": ...}`."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> JsonObject:
        body: JsonObject = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass
class Keyboard:
    """The reply_markup of a bot message, parsed from aiogram's JSON string."""

    inline: list[list[JsonObject]] = field(default_factory=list)
    reply: list[list[str]] = field(default_factory=list)

    def inline_labels(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(str(button.get("text", "")) for button in row) for row in self.inline)

    def reply_labels(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(row) for row in self.reply)


def parse_reply_markup(raw: str | None) -> Keyboard:
    if not raw:
        return Keyboard()
    try:
        markup = json.loads(raw)
    except ValueError as error:
        raise bad_request("can't parse reply keyboard markup JSON object") from error
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    keyboard = Keyboard()
    for row in _rows(markup.get("inline_keyboard")):
        buttons: list[JsonObject] = []
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
            data = button.get("callback_data")
            if data is not None and (
                not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
            ):
                raise bad_request("BUTTON_DATA_INVALID")
            check_web_app(button.get("web_app"))
            buttons.append({str(key): value for key, value in button.items()})
        keyboard.inline.append(buttons)
    for row in _rows(markup.get("keyboard")):
        keyboard.reply.append(
            [str(b.get("text", "")) if isinstance(b, dict) else str(b) for b in row]
        )
    return keyboard


def check_web_app(web_app: object) -> None:
    """Telegram opens Mini Apps over https only, and says so."""
    if web_app is None:
        return
    url = web_app.get("url") if isinstance(web_app, dict) else None
    if not isinstance(url, str) or not url.startswith("https://"):
        raise bad_request(f"Web App URL '{url}' is invalid: Only HTTPS links are allowed")


def _rows(value: object) -> list[list[object]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise bad_request("can't parse reply keyboard markup JSON object")
    return [list(row) for row in value]


def format_text(
    text: str | None, parse_mode: str | None, entities_json: str | None
) -> tuple[str, list[JsonObject]]:
    """The plain text and entities Telegram would store for a sendMessage/editMessageText."""
    if not text:
        raise bad_request("message text is empty")
    entities: list[JsonObject] = []
    if parse_mode and parse_mode.lower() == "html":
        try:
            text, entities = parse_html(text)
        except EntityParseError as error:
            raise bad_request(f"can't parse entities: {error}") from error
    elif entities_json:
        loaded = json.loads(entities_json)
        if isinstance(loaded, list):
            entities = [e for e in loaded if isinstance(e, dict)]
    # Markdown parse modes are kept as sent: the stand-in does not interpret them.
    if not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    return text, entities


def command_entities(text: str) -> list[JsonObject]:
    """A bot_command entity for "/start" or "/start@bot args", as Telegram adds."""
    if not text.startswith("/"):
        return []
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]


@dataclass
class StoredMessage:
    id: int
    sender: Sender
    text: str
    date: int
    seq: int
    """The stand-in's change counter when this message was last created/edited/deleted."""
    entities: list[JsonObject] = field(default_factory=list)
    keyboard: Keyboard = field(default_factory=Keyboard)
    deleted: bool = False
    edited: bool = False
    kind: Kind = "text"
    photo: bytes = b""

    def view(self) -> ChatMessage:
        return ChatMessage(
            id=self.id,
            sender=self.sender,
            text=self.text,
            buttons=self.keyboard.inline_labels(),
            deleted=self.deleted,
            edited=self.edited,
            kind=self.kind,
            keyboard=self.keyboard.reply_labels(),
            photo=self.photo,
        )

    def find_button(self, label_or_data: str) -> JsonObject | None:
        for row in self.keyboard.inline:
            for button in row:
                if label_or_data in (button.get("text"), button.get("callback_data")):
                    return button
        return None


@dataclass
class Chat:
    """A private chat between the bot and one simulated user (chat id = user id)."""

    user_id: int
    first_name: str
    language_code: str
    entries: list[StoredMessage] = field(default_factory=list)
    next_message_id: int = 1
    blocked: bool = False
    username: str | None = None

    def user_json(self) -> JsonObject:
        user: JsonObject = {
            "id": self.user_id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": self.language_code,
        }
        if self.username:
            user["username"] = self.username
        return user

    def chat_json(self) -> JsonObject:
        return {"id": self.user_id, "type": "private", "first_name": self.first_name}

    def add(self, message: StoredMessage) -> StoredMessage:
        self.entries.append(message)
        return message

    def allocate_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def message(self, message_id: int) -> StoredMessage | None:
        for entry in self.entries:
            if entry.kind == "text" and entry.id == message_id and not entry.deleted:
                return entry
        return None

    def message_json(self, message: StoredMessage, bot_user: JsonObject) -> JsonObject:
        body: JsonObject = {
            "message_id": message.id,
            "date": message.date,
            "chat": self.chat_json(),
            "from": bot_user if message.sender == "bot" else self.user_json(),
            "text": message.text,
        }
        if message.entities:
            body["entities"] = message.entities
        if message.keyboard.inline:
            body["reply_markup"] = {"inline_keyboard": message.keyboard.inline}
        if message.edited:
            body["edit_date"] = message.date
        return body

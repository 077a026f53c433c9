"""What the stand-in records: the chat as a person sees it, and every Bot API call."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

Sender = Literal["bot", "user"]
Kind = Literal["text", "press"]


@dataclass(frozen=True)
class ChatMessage:
    """One entry of a private chat, in its current state.

    `kind="press"` entries are the user's button presses (`text` is the button's label,
    `id` the message the button was on); they appear only in `SimUser.timeline`.
    """

    id: int
    sender: Sender
    text: str
    buttons: tuple[tuple[str, ...], ...] = ()
    deleted: bool = False
    edited: bool = False
    kind: Kind = "text"
    keyboard: tuple[tuple[str, ...], ...] = ()
    """Reply-keyboard rows (the keyboard shown under the input field), if this message set one."""
    photo: bytes = b""
    """The image of a photo message (`sendPhoto`); `text` is then its caption."""

    def button_labels(self) -> list[str]:
        return [label for row in self.buttons for label in row]


@dataclass(frozen=True)
class ApiCall:
    """One request that reached the stand-in with the right token (the token is not kept)."""

    method: str
    params: dict[str, str] = field(default_factory=dict)
    time: float = 0.0
    """time.monotonic() when the request arrived."""
    status: int = 200
    """HTTP status the stand-in answered with (429 for an injected rate limit, ...)."""

    def json_param(self, name: str) -> object:
        """A parameter that aiogram sent as a JSON string (reply_markup, commands, ...)."""
        raw = self.params.get(name)
        return None if raw is None else json.loads(raw)


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST of an update to the bot's webhook."""

    update_id: int
    status: int
    """HTTP status of the bot's answer; 0 when the connection failed."""
    time: float

"""A simulated Telegram user and their private chat with the bot, as tests drive them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.standin.model import ChatMessage
from bot.standin.transcript import render_transcript

if TYPE_CHECKING:
    from bot.standin.chat import Chat
    from bot.standin.server import BotApiStandIn

Matcher = Callable[[ChatMessage], bool] | str
"""A substring of the message text, or a predicate on the message."""


class SimUser:
    """A Telegram user chatting privately with the bot (chat id = user id)."""

    def __init__(self, standin: BotApiStandIn, user_id: int) -> None:
        self._standin = standin
        self._id = user_id

    def __repr__(self) -> str:
        return f"SimUser(id={self._id})"

    @property
    def id(self) -> int:
        return self._id

    @property
    def chat_id(self) -> int:
        return self._id

    @property
    def _chat(self) -> Chat:
        return self._standin._chat(self._id)

    async def send_text(self, text: str) -> int:
        """Sends a text message to the bot (commands get a bot_command entity); returns its
        message id."""
        return await self._standin._user_sends(self._id, text)

    async def press(self, label_or_data: str) -> str:
        """Presses the inline button (by label or callback data) on the latest bot message
        that has it; returns the callback query id. LookupError when no message has it."""
        return await self._standin._user_presses(self._id, label_or_data)

    def block(self, blocked: bool = True) -> None:
        """A blocked bot gets 403 "bot was blocked by the user" on sendMessage."""
        self._chat.blocked = blocked

    @property
    def messages(self) -> list[ChatMessage]:
        """The chat's messages (both sides, deleted ones flagged), oldest first."""
        return [entry.view() for entry in self._chat.entries if entry.kind == "text"]

    @property
    def timeline(self) -> list[ChatMessage]:
        """`messages` plus the user's button presses, in order: what the transcript shows."""
        return [entry.view() for entry in self._chat.entries]

    def bot_messages(self) -> list[ChatMessage]:
        return [m for m in self.messages if m.sender == "bot" and not m.deleted]

    def transcript(self) -> str:
        return render_transcript(self.timeline)

    def mark(self) -> int:
        return self._standin.mark()

    async def wait_for_bot_message(
        self,
        match: Matcher,
        timeout: float = 5.0,  # noqa: ASYNC109 - a bound for tests, part of this helper's API
        *,
        after: int | None = None,
    ) -> ChatMessage:
        """The first bot message matching `match` (a substring of its text, or a predicate),
        among those sent or edited after `after` (a `mark()`); waits until one arrives."""
        predicate = _matcher(match)

        def found() -> ChatMessage | None:
            for entry in self._chat.entries:
                if (
                    entry.sender == "bot"
                    and entry.kind == "text"
                    and not entry.deleted
                    and (after is None or entry.seq > after)
                    and predicate(entry.view())
                ):
                    return entry.view()
            return None

        return await self._wait(found, timeout, f"a bot message matching {match!r}")

    async def wait_for_deleted(
        self,
        message_id: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - a bound for tests, part of this helper's API
    ) -> ChatMessage:
        """Waits until the bot deletes the message; returns it (flagged deleted)."""

        def found() -> ChatMessage | None:
            for entry in self._chat.entries:
                if entry.kind == "text" and entry.id == message_id and entry.deleted:
                    return entry.view()
            return None

        return await self._wait(found, timeout, f"message {message_id} to be deleted")

    async def _wait(
        self, found: Callable[[], ChatMessage | None], seconds: float, what: str
    ) -> ChatMessage:
        try:
            await self._standin.wait_until(lambda: found() is not None, seconds)
        except TimeoutError:
            raise TimeoutError(
                f"waited {seconds}s for {what}; the chat so far:\n{self.transcript()}"
            ) from None
        result = found()
        assert result is not None
        return result


def _matcher(match: Matcher) -> Callable[[ChatMessage], bool]:
    if isinstance(match, str):
        return lambda message: match in message.text
    return match

"""What the dashboard needs from the rest of moahook, as small protocols and values.

The Telegram side (sending a code to a user's chat, the fill-notice supervisor) is
passed in by the composition root: the web side never imports the bot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from kis.env import Environment
from kis.keycheck import KeyChecker
from kis.models import AppCredentials
from kis.secret import Secret
from kis.ws import ConnectionState
from storage.facade import Storage
from storage.records import UserRecord
from webhook_server.client_ip import IPNetwork


class CodeSender(Protocol):
    """Sends `code` for `purpose` to the user's private chat with the bot, as its own
    message in the user's language; False when Telegram refused (bot blocked, Telegram
    down). Never through the outbox: outbox rows are stored in clear."""

    async def __call__(self, user: UserRecord, purpose: str, code: str, /) -> bool: ...


class FillWatch(Protocol):
    """The fill-notice supervisor's part the key checks need."""

    async def probe(
        self, account_id: int, chat_id: int, creds: AppCredentials, hts_id: str,
        timeout: float,  # noqa: ASYNC109
    ) -> ConnectionState: ...

    async def sync(self, user_id: int) -> ConnectionState | None: ...

    def connection_state(self, account_id: int) -> ConnectionState | None: ...

    def state_for(self, account_id: int, env: Environment) -> tuple[bool, str]: ...


@dataclass(frozen=True, slots=True)
class Limit:
    hits: int
    window: timedelta


@dataclass(frozen=True, slots=True)
class SignInLimits:
    """Sign-in attempts allowed per client IP and per target user, per window."""

    per_ip: Limit = Limit(30, timedelta(minutes=10))
    per_user: Limit = Limit(10, timedelta(minutes=10))
    # Sessions opened with initData Telegram signed (the Mini App opened again and again).
    telegram_per_user: Limit = Limit(60, timedelta(minutes=10))
    # Codes sent to one user's chat, whatever asked for them (each is a Telegram message,
    # and one the user did not ask for when someone else types their name).
    codes_per_user: Limit = Limit(10, timedelta(minutes=10))
    recheck: Limit = Limit(1, timedelta(minutes=1))


@dataclass(frozen=True, slots=True)
class DashboardDeps:
    storage: Storage
    keychecker: KeyChecker
    watch: FillWatch
    send_code: CodeSender
    bot_token: Secret
    public_url: str
    # Called with a webhook token that stopped being valid, so caches drop it at once.
    forget_webhook_token: Callable[[str], None]
    # Ready-to-paste alert messages by name ("strategy", "indicator", …).
    alert_templates: Mapping[str, str] = field(default_factory=dict)
    limits: SignInLimits = SignInLimits()
    init_data_max_age: timedelta = timedelta(hours=1)
    poll_seconds: float = 3.0
    trusted_proxies: tuple[IPNetwork, ...] = ()
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.lower().startswith("https://")

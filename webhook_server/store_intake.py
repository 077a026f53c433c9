"""`StorageIntake`: the `AlertIntake` the web server uses in production.

token → user (by the token's hash, cached in memory) → the accounts the alert is for
→ the alert durably stored with SPEC section 4's duplicate rule (an alert for several
accounts: one received alert and one row per account, in one transaction) → each
account's row handed to the order pipeline in memory → answered. The answer never
waits for KIS.

Durability at a high alert rate comes from storage's group commit (`Alerts.accept`):
concurrent accepts queue up while one transaction is being written, and the next
transaction stores all of them at once; every request is answered after its own
batch committed. A lone alert is written at once, so it adds no latency when idle.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, Protocol

from sqlalchemy.exc import SQLAlchemyError

from storage.crypto import hash_token
from storage.facade import Storage
from storage.repositories.alerts import AlertLeg
from webhook_server.alert import Alert, JSONValue
from webhook_server.dispatch import Route
from webhook_server.intake import (
    UNAVAILABLE,
    UNKNOWN_TOKEN,
    Accepted,
    Duplicate,
    IntakeResult,
)
from webhook_server.log_context import detached, set_alert_context
from webhook_server.token_guard import UnknownTokens

log = logging.getLogger(__name__)

MAX_CACHED_TOKENS: Final = 100_000
UNAVAILABLE_LOG_EVERY_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class AcceptedAlert:
    """An alert (one account's row of it) just stored, handed to the pipeline without
    a database round trip."""

    alert_id: int
    user_id: int
    alert: Alert
    arrived: float = field(default_factory=time.perf_counter)  # monotonic, for latency
    claim: tuple[str | None, int] | None = None  # several instances: (lease, epoch) taken
    account_id: int | None = None  # None: the user has no such account (refused)


class AlertSink(Protocol):
    def submit(self, accepted: AcceptedAlert) -> None:
        """Queue an accepted alert; must not block (the HTTP answer waits on it)."""
        ...

    async def route(self, user_id: int, accounts: tuple[str, ...]) -> list[Route]:
        """Where the user's new alert goes, one route per account it is for (`accounts`
        as the alert names them; () = the default): acted on here, or by the owner of
        that account's key."""
        ...


# --- the intake --------------------------------------------------------------------------


class StorageIntake:
    """`AlertIntake` on `Storage`: durable before the answer, pipeline fed in memory."""

    def __init__(
        self,
        storage: Storage,
        sink: AlertSink,
        unknown_tokens: UnknownTokens | None = None,
        instance_id: str = "",
    ) -> None:
        self._storage = storage
        self._sink = sink
        self._instance_id = instance_id
        self._users: dict[str, int] = {}  # token hash → user id
        self._unavailable = 0
        self._unavailable_logged = -UNAVAILABLE_LOG_EVERY_S
        self._unknown = unknown_tokens or UnknownTokens()

    def __repr__(self) -> str:
        return f"StorageIntake(cached_tokens={len(self._users)})"

    async def start(self) -> None:
        """Nothing to start: storage batches the writes itself (kept for the app's life cycle)."""

    async def close(self) -> None:
        """Nothing to stop: every accepted alert was answered only once durable."""

    def forget_token(self, token: str) -> None:
        """Drop a token from the cache (call when it is rotated away or deleted)."""
        self._users.pop(hash_token(token), None)

    def forget_user(self, user_id: int) -> None:
        """Drop every cached token of a user (rotation when the old token is not at hand)."""
        for digest in [d for d, uid in self._users.items() if uid == user_id]:
            del self._users[digest]

    async def submit(
        self, token: str, body: bytes, alert: Alert, received_at: datetime, client: str = ""
    ) -> IntakeResult:
        try:
            return await self._submit(token, body, alert, received_at, client)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            # The database is out of reach: nothing was stored, nothing will be acted on.
            # One line now and then, not one per alert.
            now = time.monotonic()
            self._unavailable += 1
            if now - self._unavailable_logged >= UNAVAILABLE_LOG_EVERY_S:
                log.warning("%d alert(s) not stored: the database is unavailable (%s); "
                            "answered 503", self._unavailable, type(exc).__name__)
                self._unavailable_logged, self._unavailable = now, 0
            return UNAVAILABLE

    async def _submit(
        self, token: str, body: bytes, alert: Alert, received_at: datetime, client: str
    ) -> IntakeResult:
        arrived = time.perf_counter()
        user_id = await self._user_for(token, client)
        if user_id is None:
            return UNKNOWN_TOKEN
        set_alert_context(user_id)  # this request's task only: its log lines name the user
        raw = body.decode("utf-8-sig")  # parse_alert decoded it already: cannot fail
        parsed = alert.to_json()
        routes = await self._sink.route(user_id, alert.accounts)
        if len(routes) == 1:
            route = routes[0]
            result = await self._storage.alerts.accept(
                user_id, raw, _for_account(parsed, alert, route), alert.id, received_at,
                lease=route.lease, claim=self._taken(route), account_id=route.account_id,
            )
            rows: tuple[int, ...] = (result.alert_id,)
        else:
            legs = [
                AlertLeg(route.account_id, _for_account(parsed, alert, route), route.lease,
                         self._taken(route))
                for route in routes
            ]
            result = await self._storage.alerts.accept(
                user_id, raw, parsed, alert.id, received_at, legs=legs
            )
            rows = result.legs
        set_alert_context(alert_id=result.alert_id)
        if result.duplicate:
            return Duplicate(str(result.alert_id))
        with detached():  # the pipeline's workers serve many alerts; each job sets its own
            for route, row in zip(routes, rows, strict=True):
                claim = route.claim
                if claim is None:
                    continue  # the owner of that account's key acts on it
                account_alert = (
                    replace(alert, accounts=(route.name,)) if alert.accounts else alert
                )
                self._sink.submit(AcceptedAlert(row, user_id, account_alert, arrived,
                                                (claim.lease, claim.epoch), route.account_id))
        return Accepted(str(result.alert_id))

    def _taken(self, route: Route) -> tuple[str, int] | None:
        """Several instances: taken here at once is recorded as taken (no claim elsewhere
        may take it too); one process records nothing of the kind."""
        claim = route.claim
        if claim is None or not route.shared:
            return None
        return (self._instance_id, claim.epoch)

    async def _user_for(self, token: str, client: str) -> int | None:
        digest = hash_token(token)
        user_id = self._users.get(digest)
        if user_id is not None:
            return user_id
        if not self._unknown.may_look_up(digest, client):
            return None
        user = await self._storage.users.by_webhook_token(token)
        if user is None:
            # Remembered as unknown for a while: new tokens are fresh random values, so a
            # new user's token is never among them.
            self._unknown.missed(digest, client)
            return None
        if len(self._users) >= MAX_CACHED_TOKENS:
            with contextlib.suppress(StopIteration, KeyError):
                del self._users[next(iter(self._users))]
        self._users[digest] = user.id
        return user.id


def _for_account(
    parsed: dict[str, JSONValue], alert: Alert, route: Route
) -> dict[str, JSONValue]:
    """What one account's row stores: the alert with the one account it is for."""
    if not alert.accounts:
        return parsed
    return {**parsed, "account": route.name}


__all__ = [
    "AcceptedAlert",
    "AlertSink",
    "StorageIntake",
]

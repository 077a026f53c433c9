"""The seam between the HTTP front end and the order pipeline.

The web handler validates a message, then hands it to an `AlertIntake`, which stores
it durably and answers before any order is placed (SPEC section 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from webhook_server.alert import Alert


@dataclass(frozen=True, slots=True)
class Accepted:
    """Stored; the pipeline will act on it."""

    alert_id: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A repeat of an alert already accepted; `alert_id` is the first one's."""

    alert_id: str


@dataclass(frozen=True, slots=True)
class UnknownToken:
    """No user has this webhook token (answered exactly like an unknown path)."""


UNKNOWN_TOKEN: Final = UnknownToken()


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The alert could not be stored now (the database is out of reach): answered 503,
    so a proxy can try another instance, and nothing is acted on."""


UNAVAILABLE: Final = Unavailable()

IntakeResult = Accepted | Duplicate | UnknownToken | Unavailable


class AlertIntake(Protocol):
    async def submit(
        self, token: str, body: bytes, alert: Alert, received_at: datetime, client: str = ""
    ) -> IntakeResult:
        """Store `alert` for the user owning `token`, or recognise it as a duplicate.

        `body` is the raw message (for the same-body-within-60-s duplicate rule);
        `received_at` is timezone-aware UTC; `client` is the sender's address (wrong
        tokens are throttled per address). Returns only once the alert is durable.
        """
        ...

"""Opt-in `/afterhours reserve` (SPEC section 15, KIS.md section 14): a KRX alert that
arrives outside hours but inside KIS's entry window becomes a reservation order for
the next session instead of a refusal. REAL only: KIS has no paper TR for it.

Exactly once, as for orders: the reservation row (one per alert) is written before
the request leaves; an answer that may have been lost leaves it `unknown` until the
reservation list at KIS says what happened. KIS sends no notice when it executes a
reservation, so `ReservationResults` reads the result after the open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from kis.client import KisClient
from kis.env import KST, Environment
from kis.errors import KisApiError, KisServerError, KisTransportError, OrderOutcomeUnknown
from kis.markets import Market
from kis.models import Account, AppCredentials
from storage.errors import OrderAlreadyExists
from storage.facade import Storage
from storage.options import UserOptions
from storage.portfolio_notices import (
    OrderSubject,
    ReservationCard,
    ReservationEvent,
    card_payload,
)
from storage.portfolio_records import ReservationStatus, ReservedOrderRecord
from storage.records import OutboxMessage
from storage.repositories.outbox import OutboxEntry
from storage.repositories.reserved import entry_date
from webhook_server.alert import Alert
from webhook_server.db_gate import DbGate
from webhook_server.sizing import SizedOrder

log = logging.getLogger(__name__)

Release = Callable[[int], Awaitable[None]]


def reservation_dedupe(reservation_id: int, event: ReservationEvent) -> str:
    return f"reservation:{reservation_id}:{event.value}"


def reservation_entry(
    chat_id: int, reservation_id: int, card: ReservationCard
) -> OutboxEntry:
    return OutboxEntry(chat_id, card.kind.value, card_payload(card),
                       reservation_dedupe(reservation_id, card.event))


class AfterHours:
    def __init__(self, storage: Storage, kis: KisClient, db: DbGate, release: Release) -> None:
        self._storage = storage
        self._kis = kis
        self._db = db
        self._release = release

    @staticmethod
    def applies(options: UserOptions, market: Market, env: Environment, now: datetime) -> bool:
        """An alert refused only for the hours becomes a reservation instead."""
        return (
            options.afterhours_reserve
            and market.reservable(env)
            and market.in_reservation_window(now)
        )

    async def reserve(
        self,
        *,
        alert_id: int,
        user_id: int,
        chat_id: int,
        creds: AppCredentials,
        account: Account,
        market: Market,
        alert: Alert,
        sized: SizedOrder,
        subject: OrderSubject,
        now: datetime,
        account_id: int | None = None,
    ) -> OutboxMessage | None:
        """Enter the reservation once and record KIS's answer; the chat message queued.
        `account_id`: moahook's account it is made for."""
        env = creds.env
        limit = sized.price if sized.order_type.has_price else None
        planned = market.plan(env, alert.instrument, sized.side, sized.quantity,
                              sized.order_type, limit, sized.last)
        try:
            record = await self._db(
                self._storage.reserved.create_pending(
                    alert_id, user_id=user_id, environment=env, symbol=alert.symbol,
                    side=sized.side.value, order_type=planned.order_type.value,
                    quantity=sized.quantity, price=planned.kis_price or None,
                    entry_date=entry_date(now), account_id=account_id,
                )
            )
        except OrderAlreadyExists:
            log.warning("alert %d already has a reservation; not sending again", alert_id)
            return None
        subject = replace(subject, side=sized.side.value, env=env.value)
        card = ReservationCard(ReservationEvent.PLACED, subject, quantity=sized.quantity)
        try:
            seq = await market.reserve(self._kis, creds, account, planned)
        except asyncio.CancelledError:
            await asyncio.shield(self._outcome(record, ReservationStatus.UNKNOWN, chat_id,
                                               replace(card, event=ReservationEvent.UNKNOWN),
                                               reason="stopped while it was sent"))
            raise
        except (OrderOutcomeUnknown, KisServerError) as exc:
            return await self._outcome(
                record, ReservationStatus.UNKNOWN, chat_id,
                replace(card, event=ReservationEvent.UNKNOWN), reason=_why(exc),
            )
        except (KisTransportError, KisApiError) as exc:
            await self._release(alert_id)
            return await self._outcome(
                record, ReservationStatus.FAILED, chat_id,
                replace(card, event=ReservationEvent.FAILED, reason=_why(exc)),
                reason=_why(exc),
            )
        opens = market.hours.next_open(now).astimezone(KST)
        placed = replace(card, opens=f"{opens:%Y-%m-%d %H:%M} KST")
        return await self._outcome(record, ReservationStatus.RESERVED, chat_id, placed, seq=seq)

    async def _outcome(
        self,
        record: ReservedOrderRecord,
        status: ReservationStatus,
        chat_id: int,
        card: ReservationCard,
        *,
        seq: str | None = None,
        reason: str | None = None,
    ) -> OutboxMessage | None:
        return await self._db(
            self._storage.reserved.record_outcome(
                record, status, seq=seq, reason=reason,
                notice=reservation_entry(chat_id, record.id, card),
            )
        )


def _why(exc: Exception) -> str:
    if isinstance(exc, KisApiError) and exc.msg_cd:
        return f"[{exc.msg_cd}] {exc.msg1}"
    return str(exc)[:300]

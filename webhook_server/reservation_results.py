"""What became of reservation orders (KIS.md section 14): KIS sends no notice when it
executes one at the open, so after the open the reservation list is read back and
each result is told once (executed with its order number and fills so far, refused,
or cancelled outside moahook). Reservations whose answer was lost are settled from
the same list: found → reserved; listed without it → never placed. Runs under the
`telegram` lease, so one instance does it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from kis.client import KisClient
from kis.errors import KisError
from kis.markets import Market, Markets
from kis.models import Reservation
from storage.facade import Storage
from storage.periodic import PeriodicWork
from storage.portfolio_notices import (
    ReservationCard,
    ReservationEvent,
    subject_from_reservation,
)
from storage.portfolio_records import ReservationStatus, ReservedOrderRecord
from storage.records import OutboxMessage
from storage.types import utcnow
from webhook_server.after_hours import reservation_entry

log = logging.getLogger(__name__)

MARKET: Final = "KRX"
AFTER_OPEN: Final = timedelta(minutes=5)  # KIS sends reservations at the open
IN_FLIGHT: Final = timedelta(minutes=1)  # a pending row younger than this may be sending
LOOKAHEAD: Final = timedelta(days=10)
PASS_S: Final = 60.0
NOT_PLACED: Final = "KIS's reservation list does not have it: it was not placed"


def match_lost(record: ReservedOrderRecord, listed: list[Reservation], taken: set[str]) -> (
    Reservation | None
):
    """A reservation whose answer was lost: the listed one with its symbol, side and
    quantity that no other reservation of ours claims."""
    for item in listed:
        if (
            item.seq not in taken
            and item.symbol == record.symbol
            and item.side.value == record.side
            and item.quantity == record.quantity
        ):
            return item
    return None


class ReservationResults(PeriodicWork):
    def __init__(
        self,
        storage: Storage,
        kis: KisClient,
        markets: Markets,
        wake: Callable[[OutboxMessage], None],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__("reservation-results", self.step, max_wait=PASS_S)
        self._storage = storage
        self._kis = kis
        self._market: Market = markets.get(MARKET)
        self._wake = wake
        self._clock = clock

    async def step(self) -> float:
        await self.run_once()
        return PASS_S

    async def run_once(self) -> int:
        """One pass over every reservation still waiting for its result; how many
        results were told."""
        now = self._clock()
        rows = await self._storage.reserved.awaiting_result(
            (ReservationStatus.RESERVED, ReservationStatus.UNKNOWN, ReservationStatus.PENDING)
        )
        # KIS lists each account's reservations on its own.
        by_account: dict[tuple[int, int | None], list[ReservedOrderRecord]] = defaultdict(list)
        for row in rows:
            if row.status is ReservationStatus.PENDING and now - row.created_at < IN_FLIGHT:
                continue
            if row.status is ReservationStatus.RESERVED and now < self._due(row):
                continue  # not sent by KIS yet
            by_account[(row.user_id, row.account_id)].append(row)
        told = 0
        for (user_id, _), records in by_account.items():
            try:
                told += await self._settle_user(user_id, records)
            except KisError as exc:
                log.info("reservation results of user %d: KIS could not be asked (%s)",
                         user_id, type(exc).__name__)
        return told

    def _due(self, record: ReservedOrderRecord) -> datetime:
        return self._market.hours.next_open(record.created_at) + AFTER_OPEN

    async def _settle_user(self, user_id: int, records: list[ReservedOrderRecord]) -> int:
        user = await self._storage.users.get(user_id)
        account_id = records[0].account_id
        if user is None or account_id is None:
            return 0
        keys = await self._storage.key_sets.get(user_id, records[0].environment,
                                                account_id=account_id)
        if keys is None:
            return 0
        creds, account = keys.kis_access()
        start = min(r.entry_day for r in records)
        listed = await self._market.reservations(self._kis, creds, account, start,
                                                 start + LOOKAHEAD)
        taken = {r.seq for r in records if r.seq}
        told = 0
        for record in records:
            if record.status is ReservationStatus.RESERVED:
                item = next((i for i in listed if i.seq == record.seq), None)
                if item is not None:
                    told += await self._report(user.chat_id, record, item)
                continue
            item = match_lost(record, listed, taken)
            if item is not None:
                taken.add(item.seq)
                await self._storage.reserved.record_outcome(record, ReservationStatus.RESERVED,
                                                            seq=item.seq)
                told += await self._report(user.chat_id, record, item)
            else:
                card = ReservationCard(ReservationEvent.FAILED, subject_from_reservation(record),
                                       record.quantity, reason=NOT_PLACED)
                self._woke(await self._storage.reserved.record_outcome(
                    record, ReservationStatus.FAILED, reason=NOT_PLACED,
                    notice=reservation_entry(user.chat_id, record.id, card),
                ))
                await self._storage.limits.release(record.alert_id)  # never placed
                told += 1
        return told

    async def _report(self, chat_id: int, record: ReservedOrderRecord, item: Reservation) -> int:
        """Tell the result once it is there; 0 while KIS has not processed it."""
        subject = subject_from_reservation(record)
        if item.order_no:
            avg = item.filled_amount / item.filled_qty if item.filled_qty else None
            card = ReservationCard(
                ReservationEvent.EXECUTED, subject, record.quantity, filled=item.filled_qty,
                avg_price="" if avg is None else str(avg), order_no=item.order_no,
            )
            status = ReservationStatus.EXECUTED
        elif item.refusal:
            card = ReservationCard(ReservationEvent.REJECTED, subject, record.quantity,
                                   reason=item.refusal)
            status = ReservationStatus.REJECTED
        elif item.cancelled:
            card = ReservationCard(ReservationEvent.CANCELLED, subject, record.quantity)
            status = ReservationStatus.CANCELLED
        else:
            return 0
        queued = await self._storage.reserved.record_result(
            record.id, status, order_no=item.order_no or None, filled_qty=item.filled_qty,
            filled_amount=item.filled_amount, reason=item.refusal or None,
            notice=reservation_entry(chat_id, record.id, card),
        )
        self._woke(queued)
        if status is not ReservationStatus.EXECUTED:
            await self._storage.limits.release(record.alert_id)  # refused or cancelled
        return 0 if queued is None else 1

    def _woke(self, queued: OutboxMessage | None) -> None:
        if queued is not None:
            self._wake(queued)

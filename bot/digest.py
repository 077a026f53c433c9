"""The daily digest (SPEC section 15): after each market's close — KRX 15:40 KST, the US
close plus ten minutes, early closes included, nothing on a day the market was shut —
every user with `/digest on` gets the day's orders, fills, refusals and realised P&L.

Exactly once per user and market day, restarts included: the outbox's dedupe key
(`digest:<user>:<market>:<day>`) is checked before the digest is built and holds when
it is queued. Runs under the `telegram` lease, so one instance sends them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Final

from bot.pnl import SOURCE_UNAVAILABLE, MarketDay, day_bounds, market_day
from kis.client import KisClient
from kis.markets import Market, Markets
from storage.facade import Storage
from storage.periodic import PeriodicWork
from storage.portfolio_notices import Digest, DigestFill, card_payload
from storage.records import AccountRecord, OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)

DIGEST_DELAY: Final = timedelta(minutes=10)  # KRX: 15:30 + 10 = 15:40 KST
CATCH_UP: Final = timedelta(hours=12)  # a restart within this still sends the digest
MAX_WAIT_S: Final = 60.0
TOP_REASONS: Final = 3


def digest_dedupe(user_id: int, market: str, day: date) -> str:
    return f"digest:{user_id}:{market}:{day.isoformat()}"


def due_days(market: Market, now: datetime) -> list[date]:
    """The market days whose digest is due at `now`: their session closed at least
    `DIGEST_DELAY` ago and at most `CATCH_UP` after that. A closed day has none."""
    today = market.hours.trading_day(now)
    due = []
    for day in (today - timedelta(days=1), today):
        session = market.hours.session(day)
        if session is None:
            continue
        at = session.closes + DIGEST_DELAY
        if at <= now < at + CATCH_UP:
            due.append(day)
    return due


def next_due(markets: Iterable[Market], now: datetime) -> float:
    """Seconds until the next digest time of any market (bounded by the caller)."""
    soonest = MAX_WAIT_S
    for market in markets:
        today = market.hours.trading_day(now)
        for day in (today, today + timedelta(days=1)):
            session = market.hours.session(day)
            if session is not None and session.closes + DIGEST_DELAY > now:
                soonest = min(soonest, (session.closes + DIGEST_DELAY - now).total_seconds())
                break
    return soonest


def digest_card(
    *,
    env: str,
    market: Market,
    day: date,
    outcomes: Counter[str],
    refusals: list[str],
    trades: MarketDay,
    account: str = "",
) -> Digest:
    fills = [
        DigestFill(t.symbol, t.name, t.side, t.quantity, str(t.price), t.exchange)
        for t in sorted(trades.trades, key=lambda tr: tr.time)
    ]
    bought = sum((t.price * t.quantity for t in trades.trades if t.side == "buy"), Decimal(0))
    sold = sum((t.price * t.quantity for t in trades.trades if t.side == "sell"), Decimal(0))
    reasons = [reason[:120] for reason, _ in Counter(refusals).most_common(TOP_REASONS)]
    available = trades.realised is not None and not trades.error
    return Digest(
        env=env,
        market=market.code,
        day=day.isoformat(),
        currency=market.currency.code,
        orders=sum(outcomes.values()),
        outcomes=dict(outcomes),
        fills=fills,
        refused=len(refusals),
        reasons=reasons,
        pnl=str(trades.realised) if available else "",
        pnl_source=trades.source if available else SOURCE_UNAVAILABLE,
        bought=str(bought),
        sold=str(sold),
        account=account,
    )


class DigestJob(PeriodicWork):
    def __init__(
        self,
        storage: Storage,
        kis: KisClient,
        markets: Markets,
        wake: Callable[[OutboxMessage], None],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__("daily-digest", self.step, max_wait=MAX_WAIT_S)
        self._storage = storage
        self._kis = kis
        self._markets = markets
        self._wake = wake
        self._clock = clock

    async def step(self) -> float:
        now = self._clock()
        for market in self._markets:
            for day in due_days(market, now):
                await self.send_day(market, day, now)
        return next_due(self._markets, self._clock())

    async def send_day(self, market: Market, day: date, now: datetime) -> int:
        """Queue the digest of `market`'s `day` for every user who wants one and has not
        had it — one per account with checked keys (SPEC section 16: every notice names
        its account); how many were queued."""
        queued = 0
        for user_id, chat_id in await self._storage.options.digest_users():
            accounts = await self._storage.accounts.for_user(user_id)
            for account in accounts:
                key = digest_dedupe(user_id, market.code, day)
                label = ""
                if len(accounts) > 1:
                    key, label = f"{key}:{account.id}", account.name
                if await self._storage.outbox.has(key):
                    continue
                try:
                    card = await self._build(user_id, account, market, day, label)
                except Exception:
                    log.exception("digest of user %d for %s %s failed", user_id, market.code,
                                  day)
                    continue
                if card is None:
                    continue
                message = await self._storage.outbox.add(
                    user_id, chat_id, card.kind.value, card_payload(card), key
                )
                if message is not None:
                    queued += 1
                    self._wake(message)
        return queued

    async def _build(
        self, user_id: int, account: AccountRecord, market: Market, day: date, label: str
    ) -> Digest | None:
        env = account.active_environment
        keys = await self._storage.key_sets.get(user_id, env, account_id=account.id)
        if keys is None or not keys.validated:
            return None
        start, end = day_bounds(market, day)
        orders = await self._storage.activity.orders_between(user_id, env, market.code, start,
                                                             end, account.id)
        refused = await self._storage.activity.refused_between(user_id, market.code, start, end,
                                                               account.id)
        creds, kis_account = keys.kis_access()
        trades = await market_day(
            kis=self._kis, storage=self._storage, market=market, user_id=user_id, creds=creds,
            account=kis_account, day=day, account_id=account.id,
        )
        return digest_card(
            env=env.value, market=market, day=day,
            outcomes=Counter(order.status.value for order in orders),
            refusals=[alert.reason or "-" for alert in refused], trades=trades, account=label,
        )

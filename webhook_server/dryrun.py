"""The dry run behind `/test`: what an alert message would do now, sent to no order API.

It runs what the pipeline runs for a real alert — parsing, the guards, the size from
fresh KIS figures — and answers with a `Notice`: `ORDER_ACCEPTED` for the order that
would be placed (with the figures used in `reason_params`: `current_price`, `held`, and
`market_closed` when the session is closed right now), `ORDER_REFUSED` with the reason
for a refusal or an invalid message, `ORDER_FAILED` when KIS could not be asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from kis.client import KisClient
from kis.errors import KisError
from kis.markets import Markets
from kis.models import Account, AppCredentials
from storage.notices import Notice, NoticeKind
from storage.records import KeySetRecord
from webhook_server.alert import AlertError, parse_alert
from webhook_server.figures import inquire, size
from webhook_server.guards import (
    FillNoticeReadiness,
    Refusal,
    UserState,
    alert_notice,
    below_one_share,
    check_guards,
    market_closed,
)
from webhook_server.market_hours import MarketClock

_ALWAYS_OPEN = MarketClock(enforce=False)


@dataclass(frozen=True, slots=True)
class DryRunParts:
    """What the dry run reads; the pipeline hands in its own (same cache, same clock)."""

    kis: KisClient
    markets: Markets
    market: MarketClock
    readiness: FillNoticeReadiness
    clock: Callable[[], datetime]
    user_state: Callable[[int], Awaitable[UserState | None]]
    blocked: Callable[[int, str], int | None]
    credentials: Callable[[KeySetRecord], tuple[AppCredentials, Account]]


async def dry_run(parts: DryRunParts, user_id: int, body: bytes) -> Notice:
    try:
        alert = parse_alert(body, parts.markets)
    except AlertError as exc:
        return Notice(
            kind=NoticeKind.ORDER_REFUSED, reason=str(exc), reason_key="invalid_alert",
            reason_params={"detail": str(exc)},
        )
    state = await parts.user_state(user_id)
    if state is None:
        return Notice(
            kind=NoticeKind.ORDER_REFUSED, reason="no such user", reason_key="user_gone"
        )
    market = parts.markets.of(alert.instrument)
    base = alert_notice(alert, state.user.active_environment.value, market)
    now = parts.clock()
    # The session is judged last and apart: a test on a weekend still shows the order.
    refusal = check_guards(
        user=state.user, keys=state.keys, readiness=parts.readiness, alert=alert, now=now,
        market=_ALWAYS_OPEN,
    )
    if refusal is None and state.keys is None:
        refusal = Refusal("no_keys", "no validated keys (/keys)", "no_keys")
    if refusal is None:
        blocked = parts.blocked(user_id, alert.symbol)
        if blocked is not None:
            refusal = Refusal(
                "earlier_unknown", f"order #{blocked} of {alert.symbol} is still unknown",
                "earlier_unknown", {"order_id": str(blocked)},
            )
    if refusal is not None or state.keys is None:
        return _refused(base, refusal or Refusal("no_keys", "no validated keys", "no_keys"))
    creds, account = parts.credentials(state.keys)
    try:
        figures = await inquire(parts.kis, market, creds, account, alert)
    except KisError as exc:
        return replace(
            base, kind=NoticeKind.ORDER_FAILED, reason=str(exc), reason_key="inquiry_failed",
            reason_params={"detail": str(exc)},
        )
    sized = size(alert, market, figures)
    if isinstance(sized, Refusal):
        return _refused(base, sized)
    if sized.quantity < 1:
        return _refused(base, below_one_share())
    shown: dict[str, str] = {}
    if figures.price is not None:
        shown["current_price"] = f"{figures.price:,}"
    if figures.holding is not None:
        shown["held"] = f"{figures.holding:,}"
    closed = parts.market.check(now, market.hours)
    if closed is not None:
        # As the hours refusal words it: the market, why, and the next open.
        shown.update(market_closed(closed).params)
        shown["market_closed"] = closed.message()
    request = market.plan(
        state.user.active_environment, alert.instrument, sized.side, sized.quantity,
        sized.order_type, sized.price if sized.order_type.has_price else None, sized.last,
    )
    return replace(
        base, kind=NoticeKind.ORDER_ACCEPTED, side=sized.side.value, quantity=sized.quantity,
        order_type=request.order_type.value, price=request.kis_price or None,
        marketable=request.marketable, reason_params=shown,
    )


def _refused(base: Notice, refusal: Refusal) -> Notice:
    return replace(
        base, kind=NoticeKind.ORDER_REFUSED, reason=refusal.reason,
        reason_key=refusal.reason_key, reason_params=dict(refusal.params),
    )

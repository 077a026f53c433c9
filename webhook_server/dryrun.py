"""The dry run behind `/test`: what an alert message would do now, sent to no order API.

It runs what the pipeline runs for a real alert — parsing, the guards, the size from
fresh KIS figures — and answers with a `Notice` per account the alert is for (SPEC
section 16): `ORDER_ACCEPTED` for the order that would be placed (with the figures used
in `reason_params`: `current_price`, `held`, and
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
from webhook_server.alert import Alert, AlertError, parse_alert
from webhook_server.figures import inquire, size
from webhook_server.guards import (
    FillNoticeReadiness,
    Refusal,
    Target,
    UserState,
    alert_notice,
    below_one_share,
    check_guards,
    market_closed,
    resolve_targets,
    unknown_account,
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
    blocked: Callable[[int, str], int | None]  # (account id, symbol) → blocking order
    credentials: Callable[[KeySetRecord], tuple[AppCredentials, Account]]


async def dry_run(parts: DryRunParts, user_id: int, body: bytes) -> list[Notice]:
    """One notice per account the message is for."""
    try:
        alert = parse_alert(body, parts.markets)
    except AlertError as exc:
        return [Notice(
            kind=NoticeKind.ORDER_REFUSED, reason=str(exc), reason_key="invalid_alert",
            reason_params={"detail": str(exc)},
        )]
    state = await parts.user_state(user_id)
    if state is None:
        return [Notice(
            kind=NoticeKind.ORDER_REFUSED, reason="no such user", reason_key="user_gone"
        )]
    return [await _for_account(parts, state, alert, target)
            for target in resolve_targets(state, alert.accounts)]


async def _for_account(
    parts: DryRunParts, state: UserState, alert: Alert, target: Target
) -> Notice:
    market = parts.markets.of(alert.instrument)
    account = state.account(target.account_id)
    if account is None:
        base = alert_notice(alert, state.user.active_environment.value, market, target.name)
        return _refused(base, unknown_account(target.name))
    base = alert_notice(alert, account.env.value, market, state.label(account.account))
    now = parts.clock()
    # The session is judged last and apart: a test on a weekend still shows the order.
    refusal = check_guards(
        user=state.user, account=account, readiness=parts.readiness, alert=alert, now=now,
        market=_ALWAYS_OPEN,
    )
    keys = account.keys
    if refusal is None:
        blocked = parts.blocked(account.account.id, alert.symbol)
        if blocked is not None:
            refusal = Refusal(
                "earlier_unknown", f"order #{blocked} of {alert.symbol} is still unknown",
                "earlier_unknown", {"order_id": str(blocked)},
            )
    if refusal is not None or keys is None:
        return _refused(base, refusal or Refusal("no_keys", "no validated keys", "no_keys"))
    creds, kis_account = parts.credentials(keys)
    try:
        figures = await inquire(parts.kis, market, creds, kis_account, alert)
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
        account.env, alert.instrument, sized.side, sized.quantity,
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

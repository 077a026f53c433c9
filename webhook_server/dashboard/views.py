"""The JSON the dashboard's API answers with, built from storage records (pure).

Nothing secret leaves through here: app keys are masked to their last 4 characters,
app secrets are never read at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from kis.keycheck import CheckReport
from kis.secret import mask
from kis.ws import ConnectionState, Status
from storage.records import (
    AccountRecord,
    AlertRecord,
    FillRecord,
    KeySetRecord,
    OrderRecord,
    UserRecord,
)

Json = dict[str, object]

CHECK_NAMES: Final = ("token", "account", "fill")
# A check still "pending" after this long was cut short (a restart, a crash).
CHECK_STALE_AFTER: Final = timedelta(minutes=2)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def number(value: int | Decimal) -> str:
    """Exact decimal text: `71000`, `185.25` (no float rounding on the way)."""
    if isinstance(value, int):
        return str(value)
    return format(value.normalize(), "f")


def user_json(user: UserRecord, lang: str) -> Json:
    return {
        "telegram_id": user.telegram_id,
        "username": user.username,
        "lang": lang,
        "env": user.active_environment.value,
        "paused": user.paused,
    }


def fill_state_json(state: ConnectionState | None) -> Json:
    if state is None:
        return {"status": Status.STOPPED.value, "reason": ""}
    return {"status": state.status.value, "reason": state.reason or ""}


def checks_json(keys: KeySetRecord, now: datetime) -> Json:
    report = CheckReport.from_json(keys.environment, keys.check_results)
    items = [
        {"name": name, "status": item.status.value, "detail": item.detail}
        for name, item in zip(
            CHECK_NAMES, (report.token, report.account, report.fill), strict=True
        )
    ]
    pending = keys.check_results is not None and not report.done
    stale = pending and (keys.checked_at is None or now - keys.checked_at > CHECK_STALE_AFTER)
    return {
        "ran": keys.check_results is not None,
        "checking": pending and not stale,
        "interrupted": stale,
        "ok": report.ok,
        "items": items,
        "checked_at": iso(keys.checked_at),
    }


def keyset_json(keys: KeySetRecord | None, now: datetime) -> Json | None:
    if keys is None:
        return None
    return {
        "env": keys.environment.value,
        "app_key": mask(keys.app_key.reveal()),
        "account": keys.account,
        "hts_id": keys.hts_id,
        "validated": keys.validated,
        "updated_at": iso(keys.updated_at),
        "checks": checks_json(keys, now),
    }


def templates_json(templates: Mapping[str, str]) -> list[Json]:
    return [{"name": name, "body": body} for name, body in templates.items()]


def accounts_json(
    accounts: Sequence[AccountRecord],
    fill_state: Callable[[int], ConnectionState | None],
) -> list[Json]:
    """Each account with its environment and fill-notice state, the default first."""
    return [
        {
            "name": a.name,
            "default": a.is_default,
            "env": a.active_environment.value,
            "fill": fill_state_json(fill_state(a.id)),
        }
        for a in accounts
    ]


def _account(names: Mapping[int, str], account_id: int | None) -> str:
    """The account's name for a user with several ("" otherwise, or when deleted)."""
    return "" if account_id is None else names.get(account_id, "")


def order_json(
    order: OrderRecord, fills: Sequence[FillRecord], names: Mapping[int, str] | None = None
) -> Json:
    average = order.avg_fill_price
    return {
        "id": order.id,
        "account": _account(names or {}, order.account_id),
        "alert_id": order.alert_id,
        "env": order.environment.value,
        "symbol": order.symbol,
        "name": order.name or "",
        "side": order.side,
        "order_type": order.order_type,
        "quantity": order.quantity,
        "price": None if order.price is None else number(order.price),
        "status": order.status.value,
        "reason": order.reason or "",
        "order_no": order.order_no or "",
        "filled_qty": order.filled_qty,
        "avg_price": None if average is None else number(average.quantize(Decimal("0.01"))),
        "created_at": iso(order.created_at),
        "fills": [
            {"quantity": f.quantity, "price": number(f.price), "at": iso(f.filled_at)}
            for f in fills
        ],
    }


def orders_json(
    orders: Sequence[OrderRecord], fills: Iterable[FillRecord],
    names: Mapping[int, str] | None = None,
) -> list[Json]:
    by_order: dict[int, list[FillRecord]] = {}
    for fill in fills:
        if fill.order_id is not None:
            by_order.setdefault(fill.order_id, []).append(fill)
    return [order_json(order, by_order.get(order.id, []), names) for order in orders]


def alert_json(alert: AlertRecord, names: Mapping[int, str] | None = None) -> Json:
    asked = (alert.parsed or {}).get("account")
    account = _account(names or {}, alert.account_id)
    if not account and alert.account_id is None and names and isinstance(asked, str):
        account = asked  # an account the user does not have: the name it asked for
    return {
        "id": alert.id,
        "account": account,
        "received_at": iso(alert.received_at),
        "summary": alert.summary(80),
        "status": alert.status.value,
        "reason": alert.reason or "",
    }


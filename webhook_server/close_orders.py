"""`/close` (SPEC section 15): selling a whole holding on the user's word in the chat.

Each sell is stored as an alert of origin `close` (sizing "all": what can be sold is
read from KIS when the order is placed) under the press's idempotency key, then the
pipeline is woken for it. A second press of the same button repeats the key and
stores nothing, so each sell reaches KIS once.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from kis.markets import Instrument
from kis.models import Side
from storage.facade import Storage
from webhook_server.alert import ORIGIN_CLOSE, Alert, SellAll

RunAlert = Callable[[int], None]


def close_alert(instrument: Instrument) -> Alert:
    return Alert(
        symbol=instrument.symbol, action=Side.SELL, sizing=SellAll(),
        market=instrument.market, exchange=instrument.exchange, origin=ORIGIN_CLOSE,
        comment="/close",
    )


class CloseOrders:
    def __init__(self, storage: Storage, run_alert: RunAlert) -> None:
        self._storage = storage
        self._run_alert = run_alert

    async def __call__(
        self, user_id: int, instrument: Instrument, key: str, account_id: int | None = None
    ) -> int | None:
        """Store the sell of `instrument` in `account_id` (None: the default account) and
        wake the pipeline; its alert id, or None when `key` was used before (a repeated
        press: nothing new)."""
        if account_id is None:
            default = await self._storage.accounts.default(user_id)
            account_id = None if default is None else default.id
        alert = close_alert(instrument)
        raw = json.dumps(
            {"via": "/close", "ticker": str(instrument), "action": "sell", "quantity": "all"},
            ensure_ascii=False,
        )
        result = await self._storage.alerts.accept(user_id, raw, alert.to_json(), key,
                                                   account_id=account_id)
        if result.duplicate:
            return None
        self._run_alert(result.alert_id)
        return result.alert_id

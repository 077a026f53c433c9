"""The order guards of SPEC section 7, in order, and sizing refusals as chat reasons.

The guards themselves are pure. `GuardInputs` keeps what they read about a user (pause,
active environment, key set) in memory until it changes; prices and holdings are
never cached (SPEC section 7: fresh from KIS for each alert).

Each refusal carries a stable `code` (metrics, logs), the English `reason` stored on
the alert for `/log`, and a `reason_key` + params naming a `reason.*` text of the
bot's catalogs so the chat shows it in the user's language. Refusals without a
catalog text (`reason_key == ""`) are shown as the literal `reason`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from kis.env import Environment
from kis.markets import Closed, Market, MarketHours
from kis.ws import NOT_READY
from storage.account_names import ALL_ACCOUNTS
from storage.notices import Notice, NoticeKind
from storage.options import NO_OPTIONS, UserOptions
from storage.records import AccountRecord, KeySetRecord, UserRecord
from webhook_server.alert import Alert, Amount, Quantity
from webhook_server.market_hours import MARKET_CLOSED, MarketClock
from webhook_server.sizing import RefusalCode, SizingRefusal


class FillNoticeReadiness(Protocol):
    """Whether an account's fill-notice subscription is live (the bot's watcher
    supervisor).

    `state_for(account_id, env)` → (ready, reason): `ready` False blocks the order
    before it reaches KIS; `reason` says why (shown in the refusal), "" when ready.
    """

    def state_for(self, account_id: int, env: Environment) -> tuple[bool, str]: ...

    async def wait_ready(self, account_id: int, env: Environment, within: float) -> None:
        """Return once the account's subscription in `env` is no longer (re)connecting,
        at most `within` seconds; at once when it is ready, has FAILED, or does not
        exist."""
        ...


MAX_CACHED_USERS: Final = 100_000
FILL_NOT_READY: Final = "fill_not_ready"


@dataclass(frozen=True, slots=True)
class AccountState:
    """One account and the key set of its active environment (None: none registered)."""

    account: AccountRecord
    keys: KeySetRecord | None

    @property
    def env(self) -> Environment:
        return self.account.active_environment


@dataclass(frozen=True, slots=True)
class UserState:
    """The guard inputs of one user: the user, the key set of their default account's
    environment, their options (risk limits, confirm mode, after-hours reservations)
    and every account (the default first)."""

    user: UserRecord
    keys: KeySetRecord | None
    options: UserOptions = NO_OPTIONS
    accounts: tuple[AccountState, ...] = ()

    def account(self, account_id: int | None) -> AccountState | None:
        return next((a for a in self.accounts if a.account.id == account_id), None)

    def label(self, account: AccountRecord) -> str:
        """How notices name an account: by name once the user has several, else not at
        all (a single-account chat reads as before accounts existed)."""
        return account.name if len(self.accounts) > 1 else ""


@dataclass(frozen=True, slots=True)
class Target:
    """One account an alert is for: its id, or None when the user has no account of
    that `name` (the alert is refused for it, with the name)."""

    account_id: int | None
    name: str


def resolve_targets(state: UserState | None, wanted: Sequence[str]) -> list[Target]:
    """The accounts an alert's `account` field names (SPEC section 16): () → the
    default account, ("all",) → every account (the default first), names → each, in
    the order given. Never empty."""
    accounts = [] if state is None else [a.account for a in state.accounts]
    if not wanted:
        default = next((a for a in accounts if a.is_default), None)
        return [Target(None if default is None else default.id,
                       "" if default is None else default.name)]
    if tuple(wanted) == (ALL_ACCOUNTS,):
        return [Target(a.id, a.name) for a in accounts] or [Target(None, "")]
    by_name = {a.name: a.id for a in accounts}
    return [Target(by_name.get(name), name) for name in wanted]


def unknown_account(name: str) -> Refusal:
    """An alert for an account the user does not have (or deleted since)."""
    if not name:
        return Refusal("no_keys", "no validated keys (/keys)", "no_keys")
    return Refusal("unknown_account", f"no account named {name!r} (/accounts)",
                   "unknown_account", {"account": name})


LoadUserState = Callable[[int], Awaitable[UserState | None]]


class GuardInputs:
    """`UserState` per user, loaded once and kept until `forget(user_id)`.

    Call `forget` whenever a user's pause flag, active environment, chat or key sets
    change (storage's change listeners do it for writes made through `Storage`). A
    load that overlaps a `forget` is not kept, so a change during a load is never
    hidden behind what was read before it.
    """

    def __init__(self, load: LoadUserState, *, max_users: int = MAX_CACHED_USERS) -> None:
        self._load = load
        self._max_users = max_users
        self._states: dict[int, UserState] = {}
        self._forgets = 0  # bumped by every forget: loads that overlap one are not kept
        # Loads under way (with the forget count they started at): a burst of alerts of
        # one user waits for one load instead of starting one each.
        self._loading: dict[int, tuple[int, asyncio.Future[UserState | None]]] = {}

    def __repr__(self) -> str:
        return f"GuardInputs(cached_users={len(self._states)})"

    async def get(self, user_id: int) -> UserState | None:
        state = self._states.get(user_id)
        if state is not None:
            return state
        forgets = self._forgets
        loading = self._loading.get(user_id)
        if loading is not None and loading[0] == forgets:
            try:
                return await asyncio.shield(loading[1])
            except asyncio.CancelledError:
                if not loading[1].cancelled():
                    raise  # this caller was cancelled
                return await self.get(user_id)  # the loader was: load here
        future: asyncio.Future[UserState | None] = asyncio.get_running_loop().create_future()
        self._loading[user_id] = (forgets, future)
        try:
            state = await self._load(user_id)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters (if any) see it raised
            raise
        finally:
            if self._loading.get(user_id, (0, None))[1] is future:
                del self._loading[user_id]
        future.set_result(state)
        if state is not None and forgets == self._forgets:
            if len(self._states) >= self._max_users:
                self._states.pop(next(iter(self._states)))
            self._states[user_id] = state
        return state

    def forget(self, user_id: int) -> None:
        self._forgets += 1
        self._states.pop(user_id, None)

    def forget_all(self) -> None:
        self._forgets += 1
        self._states.clear()


class AlwaysReady:
    """Readiness for setups without fill-notice watchers (bench, some tests)."""

    def state_for(self, account_id: int, env: Environment) -> tuple[bool, str]:
        return True, ""

    async def wait_ready(self, account_id: int, env: Environment, within: float) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    reason: str
    reason_key: str = ""
    params: Mapping[str, str] = field(default_factory=dict)


def check_guards(
    *,
    user: UserRecord,
    account: AccountState,
    readiness: FillNoticeReadiness,
    alert: Alert,
    now: datetime,
    market: MarketClock,
    hours: MarketHours | None = None,
    check_lag: bool = True,
) -> Refusal | None:
    """The guards that need no KIS call, in SPEC order, for the order of one account;
    None when all pass. Pause is the user's (it stops every account's orders).
    `check_lag` False: the user confirmed the alert in the chat, however long it took."""
    if user.paused:
        return Refusal("paused", "acting on alerts is paused (/resume)", "paused")
    env = account.env
    keys = account.keys
    if keys is None or not keys.validated or keys.environment is not env:
        return Refusal(
            "no_keys", f"no validated {env.value} keys (/keys)", "no_keys", {"env": env.value}
        )
    ready, why = readiness.state_for(account.account.id, env)
    if not ready:
        # FILL_NOT_READY: the pipeline may wait (bounded) for a reconnecting socket.
        detail = _bare(why, f"{NOT_READY}: ")  # the catalog text says "not ready" already
        reason = "fill notices are not ready" + (f": {detail}" if detail else "")
        return Refusal(FILL_NOT_READY, reason, "fill_not_ready", {"detail": detail})
    if check_lag and alert.is_stale(now):
        lag = alert.lag_seconds(now) or 0.0
        max_lag = alert.max_lag or 0.0
        return Refusal(
            "stale",
            f"the alert arrived {lag:.0f} s after it fired (max_lag {max_lag:g} s)",
            "stale",
            {"lag": f"{lag:.0f}", "max_lag": f"{max_lag:g}"},
        )
    closed = market.check(now, hours)
    if closed is not None:
        return market_closed(closed)
    return None


def market_closed(closed: Closed) -> Refusal:
    """The hours refusal names the market, why, and the next open (KST, and the market's
    own time when it differs)."""
    params = {
        "market": closed.market,
        "detail": closed.detail,
        "opens": closed.opens_text(),
        "opens_kst": f"{closed.next_open_kst:%Y-%m-%d %H:%M}",
    }
    return Refusal(MARKET_CLOSED, closed.message(), "market_closed", params)


def sizing_refusal(alert: Alert, refusal: SizingRefusal) -> Refusal:
    """A sizing refusal as a chat reason: `reason.<code>` with the refusal's params, except
    that amount mode's "below one share" names the amount and the price it divided by."""
    code = refusal.reason_code
    if code is RefusalCode.BELOW_ONE_SHARE and isinstance(alert.sizing, Amount):
        return Refusal(code.value, refusal.message, "amount_below_one_share", refusal.params)
    return Refusal(code.value, refusal.message, code.value, refusal.params)


def alert_notice(alert: Alert, env: str, market: Market, account: str = "") -> Notice:
    """The chat notice about `alert` as far as the alert says (a refusal until told
    otherwise): stock and its market, side, quantity, order type, limit price, comment,
    and the account it is for (`account`: its name, "" when not to be shown)."""
    return Notice(
        kind=NoticeKind.ORDER_REFUSED,
        env=env,
        account=account,
        symbol=alert.symbol,
        side=alert.action.value if alert.action else "",
        quantity=alert.sizing.shares if isinstance(alert.sizing, Quantity) else 0,
        order_type=alert.order_type.value,
        price=alert.price,
        comment=alert.comment or "",
        market=market.code,
        exchange=alert.exchange if market.code != "KRX" else "",
        currency=market.currency.code,
        ignored_price=alert.ignored_price or "",
    )


def below_one_share() -> Refusal:
    return Refusal("quantity_below_one", "quantity is below 1 share", "quantity_below_one")


def _bare(text: str, prefix: str) -> str:
    text = text.strip()
    return text[len(prefix) :].strip() if text.startswith(prefix) else text

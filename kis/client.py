"""The KIS REST client: orders, revisions/cancels and inquiries over one httpx client.

One central request path (`_call`) does what every /uapi call needs: the access token
(shared per app key and environment, see `kis.tokens`), the per-key rate limiter,
KIS's headers, and the decision on `rt_cd`/`msg_cd`:

- EGW00201 (rate limited): back off and retry, at most `max_rate_limit_retries` times.
  Orders too: KIS refused before the request became an order.
- EGW00121/122/123 (token): invalidate, obtain a token once more, retry once.
- Orders are never re-sent after the request may have left: any error after the
  connection was made raises `OrderOutcomeUnknown`; only errors that prove nothing was
  sent (connect/pool) raise `KisTransportError`.
- Inquiries retry transport and server errors a bounded number of times.

Only TR IDs, KIS codes and latencies are logged; never headers or bodies.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, TypeVar

import httpx

from kis import _parse, overseas, reservations
from kis._wire import NOT_SENT_ERRORS, JsonObject, json_object, refusal, text
from kis.env import (
    KIS_PER_SECOND,
    OVERSEAS_TR_IDS,
    RATE_LIMITS,
    TR_IDS,
    Endpoints,
    Environment,
)
from kis.errors import (
    KisError,
    KisRateLimited,
    KisServerError,
    KisTokenInvalid,
    KisTransportError,
    OrderOutcomeUnknown,
)
from kis.models import (
    Account,
    AppCredentials,
    Balance,
    Buyable,
    BuyingPower,
    Execution,
    OrderAck,
    OrderRequest,
    OrderType,
    OverseasBalance,
    OverseasOrderRequest,
    OverseasQuote,
    Quote,
    RealisedPnl,
    Reservation,
    ReservationRequest,
    Side,
)
from kis.ratelimit import RateLimiter, rate_limit_backoff
from kis.secret import Secret
from kis.tokens import TokenManager, utc_now
from kis.tokenstore import TokenStore

log = logging.getLogger(__name__)
_T = TypeVar("_T")

ResponseObserver = Callable[[str, float, str | None], None]
"""Called after every /uapi answer: (tr_id, seconds, msg_cd or None on transport errors)."""

BeforeSend = Callable[[], Awaitable[None]]
"""Awaited once per order, with the access token and the rate-limit slot in hand, right
before the request is written; if it raises, nothing is sent. Retries that are safe
(EGW00201, a re-issued token) do not run it again."""

ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
REVISE_CANCEL_PATH = "/uapi/domestic-stock/v1/trading/order-rvsecncl"
PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
BALANCE_PATH = "/uapi/domestic-stock/v1/trading/inquire-balance"
BUYABLE_PATH = "/uapi/domestic-stock/v1/trading/inquire-psbl-order"
EXECUTIONS_PATH = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"

_MORE_PAGES = frozenset({"F", "M"})
# Continuation keys: domestic inquiries page with CTX_AREA_*100, overseas with *200.
_CTX_100 = ("CTX_AREA_FK100", "CTX_AREA_NK100")
_CTX_200 = ("CTX_AREA_FK200", "CTX_AREA_NK200")


def default_http_client(timeout: float) -> httpx.AsyncClient:
    """A pooled client for KIS: keep-alive connections, a short connect timeout."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16,
                            keepalive_expiry=30.0),
        follow_redirects=False,
    )


def _transient_backoff(attempt: int) -> float:
    return float(min(0.5 * 2.0 ** (attempt - 1), 4.0))


@dataclass(frozen=True, slots=True)
class _OrderContext:
    """Marks a call as an order: it must never be sent twice."""

    order: OrderRequest | OverseasOrderRequest | None = None
    original_order_no: str | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    body: JsonObject
    tr_cont: str


class KisClient:
    def __init__(
        self,
        *,
        endpoints: Endpoints,
        http: httpx.AsyncClient,
        token_store: TokenStore,
        rate_limits: Mapping[Environment, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = utc_now,
        max_rate_limit_retries: int = 5,
        max_transient_retries: int = 2,
        max_token_wait: float = 60.0,
        max_pages: int = 100,
        on_response: ResponseObserver | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._http = http
        self._rates = dict(RATE_LIMITS if rate_limits is None else rate_limits)
        self._clock = clock
        self._sleep = sleep
        self._max_rate_retries = max_rate_limit_retries
        self._max_transient_retries = max_transient_retries
        self._max_pages = max_pages
        self._on_response = on_response
        self._limiters: dict[tuple[str, Environment], RateLimiter] = {}
        self.tokens = TokenManager(
            endpoints=endpoints, http=http, store=token_store, now=now, sleep=sleep,
            max_issue_wait=max_token_wait, max_rate_limit_retries=max_rate_limit_retries,
        )

    def __repr__(self) -> str:
        envs = ", ".join(f"{env.value}={self._endpoints.rest_url(env)}"
                         for env in self._endpoints.rest)
        return f"KisClient({envs}, keys={len(self._limiters)})"

    # -- tokens ---------------------------------------------------------------------

    async def access_token(self, creds: AppCredentials) -> Secret:
        """The shared access token of this key (issued only when needed)."""
        return await self.tokens.access_token(creds)

    async def approval_key(self, creds: AppCredentials) -> Secret:
        """The WebSocket approval key of this key (cached about a day)."""
        return await self.tokens.approval_key(creds)

    async def invalidate_approval_key(
        self, creds: AppCredentials, key: Secret | None = None
    ) -> None:
        """Forget the approval key after the WebSocket rejected it (OPSP0011)."""
        await self.tokens.invalidate_approval_key(creds, key)

    async def revoke_token(self, creds: AppCredentials) -> None:
        await self.tokens.revoke(creds)

    def limiter(self, creds: AppCredentials) -> RateLimiter:
        """The limiter shared by every call of this (app key, environment)."""
        key = (creds.app_key, creds.env)
        limiter = self._limiters.get(key)
        if limiter is None:
            rate = self._rates[creds.env]
            limiter = RateLimiter(
                rate, clock=self._clock, sleep=self._sleep,
                per_second=max(KIS_PER_SECOND[creds.env], math.ceil(rate)),
            )
            self._limiters[key] = limiter
        return limiter

    # -- orders ---------------------------------------------------------------------

    async def place_order(
        self,
        creds: AppCredentials,
        account: Account,
        order: OrderRequest,
        *,
        before_send: BeforeSend | None = None,
    ) -> OrderAck:
        """Send a cash order once. `OrderOutcomeUnknown` if it may exist without an answer.

        `before_send` (e.g. writing the order's row) runs once, right before the request
        is written; what fails before it proves the order was not sent."""
        ids = TR_IDS[creds.env]
        tr_id = ids.sell if order.side is Side.SELL else ids.buy
        context = _OrderContext(order=order)
        answer = await self._call(
            creds, "POST", ORDER_PATH, tr_id, body=_parse.order_body(account, order),
            order=context, before_send=before_send,
        )
        return self._ack(answer, tr_id, context)

    async def cancel_order(
        self,
        creds: AppCredentials,
        account: Account,
        *,
        branch: str,
        order_no: str,
        quantity: int = 0,
    ) -> OrderAck:
        """Cancel `quantity` shares of an order; 0 cancels all that remains."""
        body = _parse.revise_cancel_body(
            account, branch=branch, order_no=order_no, cancel=True, quantity=quantity,
            price=0, order_type=OrderType.LIMIT,
        )
        return await self._revise_cancel(creds, body, order_no)

    async def revise_order(
        self,
        creds: AppCredentials,
        account: Account,
        *,
        branch: str,
        order_no: str,
        quantity: int,
        price: int,
        order_type: OrderType,
    ) -> OrderAck:
        """Revise an order's price/type; `quantity` 0 revises all that remains."""
        body = _parse.revise_cancel_body(
            account, branch=branch, order_no=order_no, cancel=False, quantity=quantity,
            price=price if order_type is OrderType.LIMIT else 0, order_type=order_type,
        )
        return await self._revise_cancel(creds, body, order_no)

    async def _revise_cancel(
        self, creds: AppCredentials, body: dict[str, str], order_no: str
    ) -> OrderAck:
        tr_id = TR_IDS[creds.env].revise_cancel
        context = _OrderContext(original_order_no=order_no)
        answer = await self._call(creds, "POST", REVISE_CANCEL_PATH, tr_id, body=body,
                                  order=context)
        return self._ack(answer, tr_id, context)

    @staticmethod
    def _ack(answer: _Answer, tr_id: str, context: _OrderContext) -> OrderAck:
        try:
            return _parse.order_ack(answer.body)
        except ValueError:
            # rt_cd "0" but no order number: accepted, yet we cannot tell which order.
            raise OrderOutcomeUnknown(
                f"{tr_id}: KIS accepted the order but sent no order number",
                tr_id=tr_id, order=context.order, original_order_no=context.original_order_no,
            ) from None

    # -- inquiries ------------------------------------------------------------------

    async def price(self, creds: AppCredentials, symbol: str) -> Quote:
        tr_id = TR_IDS[creds.env].price
        params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol}
        answer = await self._call(creds, "GET", PRICE_PATH, tr_id, params=params)
        return _parsed(tr_id, lambda: _parse.quote(symbol, answer.body, tr_id))

    async def balance(self, creds: AppCredentials, account: Account) -> Balance:
        tr_id = TR_IDS[creds.env].balance
        pages = await self._pages(creds, BALANCE_PATH, tr_id, _parse.balance_params(account))
        return _parsed(tr_id, lambda: _parse.balance(pages))

    async def buyable(
        self, creds: AppCredentials, account: Account, symbol: str, price: int = 0
    ) -> Buyable:
        """Cash-only buyable quantity/amount; price 0 = at market (KIS uses the upper limit)."""
        tr_id = TR_IDS[creds.env].buyable
        params = _parse.buyable_params(account, symbol, price)
        answer = await self._call(creds, "GET", BUYABLE_PATH, tr_id, params=params)
        return _parsed(tr_id, lambda: _parse.buyable(answer.body))

    async def daily_executions(
        self,
        creds: AppCredentials,
        account: Account,
        *,
        start: date,
        end: date,
        order_no: str = "",
        symbol: str = "",
    ) -> list[Execution]:
        tr_id = TR_IDS[creds.env].daily_executions
        params = _parse.executions_params(
            account, start=start, end=end, order_no=order_no, symbol=symbol
        )
        pages = await self._pages(creds, EXECUTIONS_PATH, tr_id, params)
        return _parsed(tr_id, lambda: _parse.executions(pages))

    # -- US stocks (overseas API, KIS.md section 13) -----------------------------------

    async def place_overseas_order(
        self,
        creds: AppCredentials,
        account: Account,
        order: OverseasOrderRequest,
        *,
        before_send: BeforeSend | None = None,
    ) -> OrderAck:
        """Send an overseas order once; the same never-twice rules (and the same
        `before_send`) as `place_order`."""
        ids = OVERSEAS_TR_IDS[creds.env]
        tr_id = ids.sell if order.side is Side.SELL else ids.buy
        context = _OrderContext(order=order)
        answer = await self._call(
            creds, "POST", overseas.ORDER_PATH, tr_id,
            body=overseas.order_body(account, order), order=context, before_send=before_send,
        )
        return self._ack(answer, tr_id, context)

    async def cancel_overseas_order(
        self,
        creds: AppCredentials,
        account: Account,
        *,
        exchange: str,
        symbol: str,
        order_no: str,
        quantity: int,
    ) -> OrderAck:
        tr_id = OVERSEAS_TR_IDS[creds.env].revise_cancel
        body = overseas.cancel_body(
            account, exchange=exchange, symbol=symbol, order_no=order_no, quantity=quantity
        )
        context = _OrderContext(original_order_no=order_no)
        answer = await self._call(creds, "POST", overseas.REVISE_CANCEL_PATH, tr_id, body=body,
                                  order=context)
        return self._ack(answer, tr_id, context)

    async def overseas_price(
        self, creds: AppCredentials, exchange: str, symbol: str
    ) -> OverseasQuote:
        tr_id = OVERSEAS_TR_IDS[creds.env].price
        params = overseas.price_params(exchange, symbol)
        answer = await self._call(creds, "GET", overseas.PRICE_PATH, tr_id, params=params)
        return _parsed(tr_id, lambda: overseas.quote(symbol, exchange, answer.body))

    async def overseas_balance(self, creds: AppCredentials, account: Account) -> OverseasBalance:
        """US holdings: one inquiry under NASD (real) or one per exchange (paper)."""
        tr_id = OVERSEAS_TR_IDS[creds.env].balance
        pages: list[JsonObject] = []
        for exchange in overseas.BALANCE_EXCHANGES[creds.env]:
            pages += await self._pages(
                creds, overseas.BALANCE_PATH, tr_id, overseas.balance_params(account, exchange),
                ctx=_CTX_200,
            )
        return _parsed(tr_id, lambda: OverseasBalance(overseas.holdings(pages)))

    async def overseas_executions(
        self,
        creds: AppCredentials,
        account: Account,
        *,
        start: date,
        end: date,
        symbol: str = "",
        exchange: str = "",
    ) -> list[Execution]:
        """Orders and fills between two New York dates; filter by order number yourself."""
        tr_id = OVERSEAS_TR_IDS[creds.env].executions
        params = overseas.executions_params(
            account, creds.env, start=start, end=end, symbol=symbol, exchange=exchange
        )
        pages = await self._pages(creds, overseas.EXECUTIONS_PATH, tr_id, params, ctx=_CTX_200)
        rows = _parsed(tr_id, lambda: overseas.executions(pages))
        return [row for row in rows if not symbol or row.symbol == symbol]

    async def overseas_buying_power(
        self, creds: AppCredentials, account: Account, *, exchange: str, symbol: str,
        price: Decimal,
    ) -> BuyingPower:
        tr_id = OVERSEAS_TR_IDS[creds.env].buying_power
        params = overseas.buying_power_params(account, exchange=exchange, symbol=symbol,
                                              price=price)
        answer = await self._call(creds, "GET", overseas.BUYING_POWER_PATH, tr_id,
                                  params=params)
        return _parsed(tr_id, lambda: overseas.buying_power(answer.body))

    # -- REAL only: realised P&L, reservation orders (KIS.md sections 14, 15) ------------

    async def realised_pnl(self, creds: AppCredentials, account: Account) -> RealisedPnl:
        """Today's realised profit/loss of domestic stocks, as KIS books it."""
        _real_only(creds, "realised P&L inquiry")
        tr_id = reservations.RLZ_PL_TR
        pages = await self._pages(creds, reservations.RLZ_PL_PATH, tr_id,
                                  reservations.rlz_pl_params(account))
        return _parsed(tr_id, lambda: reservations.realised_pnl(pages))

    async def place_reservation(
        self, creds: AppCredentials, account: Account, order: ReservationRequest
    ) -> str:
        """Enter a reservation once; its RSVN_ORD_SEQ. Never re-sent after it may have
        left (`OrderOutcomeUnknown`), like an order."""
        _real_only(creds, "reservation orders")
        tr_id = reservations.ORDER_TR
        context = _OrderContext()
        answer = await self._call(creds, "POST", reservations.ORDER_PATH, tr_id,
                                  body=reservations.order_body(account, order), order=context)
        try:
            return reservations.sequence(answer.body)
        except ValueError:
            raise OrderOutcomeUnknown(
                f"{tr_id}: KIS took the reservation but sent no sequence number",
                tr_id=tr_id, order=None, original_order_no=None,
            ) from None

    async def reservations(
        self, creds: AppCredentials, account: Account, *, start: date, end: date
    ) -> list[Reservation]:
        """Reservations ordered for `start`..`end` (KST dates), cancelled ones included."""
        _real_only(creds, "reservation orders")
        tr_id = reservations.LIST_TR
        pages = await self._pages(creds, reservations.LIST_PATH, tr_id,
                                  reservations.list_params(account, start, end), ctx=_CTX_200)
        return _parsed(tr_id, lambda: reservations.reservations(pages))

    async def cancel_reservation(
        self, creds: AppCredentials, account: Account, *, seq: str, order_date: str
    ) -> None:
        _real_only(creds, "reservation orders")
        await self._call(
            creds, "POST", reservations.CANCEL_PATH, reservations.CANCEL_TR,
            body=reservations.cancel_body(account, seq, order_date),
            order=_OrderContext(original_order_no=seq),
        )

    async def _pages(
        self,
        creds: AppCredentials,
        path: str,
        tr_id: str,
        params: dict[str, str],
        *,
        ctx: tuple[str, str] = _CTX_100,
    ) -> list[JsonObject]:
        """Follow continuation pages: tr_cont F/M -> next request with tr_cont N + ctx."""
        fk_name, nk_name = ctx
        fk = nk = ""
        tr_cont = ""
        pages: list[JsonObject] = []
        for _ in range(self._max_pages):
            page_params = {**params, fk_name: fk, nk_name: nk}
            answer = await self._call(creds, "GET", path, tr_id, params=page_params,
                                      tr_cont=tr_cont)
            pages.append(answer.body)
            if answer.tr_cont not in _MORE_PAGES:
                return pages
            fk = _context(answer.body, fk_name.lower())
            nk = _context(answer.body, nk_name.lower())
            tr_cont = "N"
        raise KisError(f"{tr_id}: more than {self._max_pages} pages; giving up")

    # -- the one request path -------------------------------------------------------

    async def _call(
        self,
        creds: AppCredentials,
        method: Literal["GET", "POST"],
        path: str,
        tr_id: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, str] | None = None,
        tr_cont: str = "",
        order: _OrderContext | None = None,
        before_send: BeforeSend | None = None,
    ) -> _Answer:
        url = self._endpoints.rest_url(creds.env) + path
        rate_retries = transient_retries = 0
        token_retried = False
        while True:
            token = await self.tokens.access_token(creds)
            headers = {
                "content-type": "application/json; charset=utf-8",
                "authorization": f"Bearer {token.reveal()}",
                "appkey": creds.app_key,
                "appsecret": creds.app_secret.reveal(),
                "tr_id": tr_id,
                "custtype": "P",
                "tr_cont": tr_cont,
            }
            await self.limiter(creds).acquire()
            if before_send is not None:
                hook, before_send = before_send, None  # once per call, not per attempt
                await hook()
            started = self._clock()
            try:
                if method == "POST":
                    response = await self._http.post(url, headers=headers, json=dict(body or {}))
                else:
                    response = await self._http.get(url, headers=headers, params=params)
            except httpx.RequestError as exc:
                elapsed = self._clock() - started
                self._observe(tr_id, elapsed, None)
                log.warning("kis %s %s after %.3fs", tr_id, type(exc).__name__, elapsed)
                sent = not isinstance(exc, NOT_SENT_ERRORS)
                if order is not None:
                    if sent:
                        raise OrderOutcomeUnknown(
                            f"{tr_id}: {type(exc).__name__} after the order was sent; "
                            "its outcome is unknown",
                            tr_id=tr_id, order=order.order,
                            original_order_no=order.original_order_no,
                        ) from exc
                    raise KisTransportError(
                        f"{tr_id}: {type(exc).__name__}; the order was not sent", tr_id=tr_id
                    ) from exc
                if transient_retries < self._max_transient_retries:
                    transient_retries += 1
                    await self._sleep(_transient_backoff(transient_retries))
                    continue
                raise KisTransportError(f"{tr_id}: {type(exc).__name__}", tr_id=tr_id) from exc
            elapsed = self._clock() - started
            answer = json_object(response)
            error = refusal(response, answer, tr_id=tr_id,
                            secrets=(token.reveal(), creds.app_secret.reveal()))
            msg_cd = error.msg_cd if error is not None else text(answer or {}, "msg_cd")
            self._observe(tr_id, elapsed, msg_cd)
            log.debug("kis %s -> %s %s %.3fs", tr_id, response.status_code, msg_cd or "-",
                      elapsed)
            if error is None:
                assert answer is not None
                return _Answer(body=answer, tr_cont=response.headers.get("tr_cont", "").strip())
            if isinstance(error, KisRateLimited) and rate_retries < self._max_rate_retries:
                rate_retries += 1
                log.info("kis %s rate limited; retry %d", tr_id, rate_retries)
                await self._sleep(rate_limit_backoff(rate_retries))
                continue
            if isinstance(error, KisTokenInvalid) and not token_retried:
                token_retried = True
                log.info("kis %s token rejected (%s); obtaining a new one", tr_id, error.msg_cd)
                await self.tokens.invalidate(creds, token)
                continue
            if order is not None and not error.msg_cd:
                # Not a KIS answer (a proxy's page, any status): the order may have reached KIS.
                raise OrderOutcomeUnknown(
                    f"{tr_id}: HTTP {response.status_code} without a KIS answer; "
                    "the order's outcome is unknown",
                    tr_id=tr_id, order=order.order, original_order_no=order.original_order_no,
                ) from error
            if (
                order is None
                and isinstance(error, KisServerError)
                and transient_retries < self._max_transient_retries
            ):
                transient_retries += 1
                await self._sleep(_transient_backoff(transient_retries))
                continue
            log.info("kis %s refused: %s", tr_id, error.msg_cd or error.http_status)
            raise error

    def _observe(self, tr_id: str, seconds: float, msg_cd: str | None) -> None:
        if self._on_response is None:
            return
        try:
            self._on_response(tr_id, seconds, msg_cd)
        except Exception:  # an observer must never break a call
            log.exception("kis response observer failed")


def _real_only(creds: AppCredentials, what: str) -> None:
    if creds.env is not Environment.REAL:
        raise ValueError(f"KIS has no {what} in paper trading")


def _parsed(tr_id: str, parse: Callable[[], _T]) -> _T:
    """An answer KIS called a success but we cannot read is a server error, not a crash."""
    try:
        return parse()
    except ValueError as exc:
        raise KisServerError(rt_cd="0", msg_cd="", msg1=f"unreadable answer: {exc}",
                             tr_id=tr_id, http_status=200) from None


def _context(body: JsonObject, key: str) -> str:
    # Continuation keys go back exactly as sent (KIS pads them with spaces).
    for candidate in (key, key.upper()):
        value = body.get(candidate)
        if value is not None:
            return str(value)
    return ""


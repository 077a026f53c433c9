"""The REST side of the simulator: aiohttp handlers for every endpoint of KIS.md 3-8."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from kis import reservations as kis_reservations
from kis.env import OVERSEAS_TR_IDS, TR_IDS, Environment
from kis.sim import inquiries, overseas
from kis.sim.accounts import SimAccount
from kis.sim.clock import kst_date, kst_stamp
from kis.sim.codes import (
    INQUIRY_OK_PAPER,
    INQUIRY_OK_REAL,
    ORDER_OK_PAPER_BUY,
    ORDER_OK_PAPER_RVSECNCL,
    ORDER_OK_PAPER_SELL,
    ORDER_OK_REAL,
    AuthRefusal,
    KisRefusal,
    bad_input,
    gateway,
    message_for,
    refused,
)
from kis.sim.faults import Fault
from kis.sim.orders import Side, SimOrder
from kis.sim.validation import (
    ORDER_TR_IDS,
    check_limit_price,
    check_tr_id,
    parse_order_cash,
    parse_rvsecncl,
    string_body,
)

if TYPE_CHECKING:
    from kis.sim.server import KisSimulator

JsonBody = dict[str, object]
RESV_OK = ("KIOK0000", "정상처리 되었습니다.")
RESV_PAGE_ROWS = 20  # KIS: at most 20 reservations per answer

RVSECNCL_TR_IDS = {env: {TR_IDS[env].revise_cancel} for env in Environment}
PRICE_TR_IDS = {env: {TR_IDS[env].price} for env in Environment}
BALANCE_TR_IDS = {env: {TR_IDS[env].balance} for env in Environment}
PSBL_TR_IDS = {env: {TR_IDS[env].buyable} for env in Environment}
CCLD_TR_IDS = {env: {TR_IDS[env].daily_executions} for env in Environment}
OAUTH_ENDPOINTS = frozenset({"token", "revoke", "approval"})
OVRS_ORDER_TR_IDS = {env: set(overseas.ORDER_TR_IDS[env]) for env in Environment}
OVRS_RVSECNCL_TR_IDS = {env: {OVERSEAS_TR_IDS[env].revise_cancel} for env in Environment}
OVRS_PRICE_TR_IDS = {env: {OVERSEAS_TR_IDS[env].price} for env in Environment}
OVRS_BALANCE_TR_IDS = {env: {OVERSEAS_TR_IDS[env].balance} for env in Environment}
OVRS_CCNL_TR_IDS = {env: {OVERSEAS_TR_IDS[env].executions} for env in Environment}
OVRS_PSAMOUNT_TR_IDS = {env: {OVERSEAS_TR_IDS[env].buying_power} for env in Environment}


def _real_only(*tr_ids: str) -> dict[Environment, set[str]]:
    # KIS has no paper TR for these: a paper call is refused as a real TR (EGW02006).
    return {Environment.REAL: set(tr_ids), Environment.PAPER: set()}


RLZ_PL_TR_IDS = _real_only(kis_reservations.RLZ_PL_TR)
RESV_TR_IDS = _real_only(kis_reservations.ORDER_TR)
RESV_CCNL_TR_IDS = _real_only(kis_reservations.LIST_TR)
RESV_RVSECNCL_TR_IDS = _real_only(kis_reservations.CANCEL_TR, "CTSC0013U")


@dataclass(frozen=True, slots=True)
class Call:
    """One /uapi request that passed the gateway checks, as its handler sees it."""

    request: web.Request
    env: Environment
    account: SimAccount
    tr_id: str
    fault: Fault | None


# A handler answers (body, tr_cont header).
Handler = Callable[[Call], Awaitable[tuple[JsonBody, str]]]


@dataclass(slots=True)
class RecordedRequest:
    """One request as the simulator saw it. No secrets: no app secret, no token."""

    method: str
    path: str
    env: Environment
    endpoint: str
    tr_id: str
    time: float
    app_key: str = field(default="", repr=False)
    tr_cont: str = ""
    status: int = 0
    msg_cd: str = ""


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _ok(result: tuple[str, str]) -> dict[str, str]:
    code, msg = result
    return {"rt_cd": "0", "msg_cd": code, "msg1": msg}


def _inquiry_ok(env: Environment) -> dict[str, str]:
    return _ok(INQUIRY_OK_REAL if env is Environment.REAL else INQUIRY_OK_PAPER)


def _order_answer(result: tuple[str, str], order: SimOrder) -> tuple[JsonBody, str]:
    output = {"KRX_FWDG_ORD_ORGNO": order.orgno, "ODNO": order.odno, "ORD_TMD": order.time}
    return {**_ok(result), "output": output}, "D"


def _page_answer(
    env: Environment, page: inquiries.Page, summary: object, ctx: str = "100"
) -> tuple[JsonBody, str]:
    body: JsonBody = {
        **_inquiry_ok(env),
        f"ctx_area_fk{ctx}": page.fk100,
        f"ctx_area_nk{ctx}": page.nk100,
        "output1": page.rows,
        "output2": summary,
    }
    return body, page.tr_cont


class RestApi:
    """Builds the aiohttp application; state lives in the simulator."""

    def __init__(self, sim: KisSimulator) -> None:
        self._sim = sim

    def app(self) -> web.Application:
        stock = "/uapi/domestic-stock/v1/"
        # (method, path, endpoint name, accepted tr_ids, handler) of every /uapi call.
        uapi: list[tuple[str, str, str, Mapping[Environment, Collection[str]], Handler]] = [
            ("POST", "trading/order-cash", "order", ORDER_TR_IDS, self._order_cash),
            ("POST", "trading/order-rvsecncl", "rvsecncl", RVSECNCL_TR_IDS, self._rvsecncl),
            ("GET", "quotations/inquire-price", "price", PRICE_TR_IDS, self._price),
            ("GET", "trading/inquire-balance", "balance", BALANCE_TR_IDS, self._balance),
            ("GET", "trading/inquire-psbl-order", "psbl", PSBL_TR_IDS, self._psbl),
            ("GET", "trading/inquire-daily-ccld", "ccld", CCLD_TR_IDS, self._ccld),
            ("GET", "trading/inquire-balance-rlz-pl", "rlz_pl", RLZ_PL_TR_IDS, self._rlz_pl),
            ("POST", "trading/order-resv", "resv", RESV_TR_IDS, self._resv),
            ("GET", "trading/order-resv-ccnl", "resv_ccnl", RESV_CCNL_TR_IDS, self._resv_ccnl),
            ("POST", "trading/order-resv-rvsecncl", "resv_rvsecncl", RESV_RVSECNCL_TR_IDS,
             self._resv_rvsecncl),
            # US stocks (KIS.md section 13), paths from the /uapi root
            ("POST", "/overseas-stock/v1/trading/order", "ovrs_order", OVRS_ORDER_TR_IDS,
             self._ovrs_order),
            ("POST", "/overseas-stock/v1/trading/order-rvsecncl", "ovrs_rvsecncl",
             OVRS_RVSECNCL_TR_IDS, self._ovrs_rvsecncl),
            ("GET", "/overseas-price/v1/quotations/price", "ovrs_price", OVRS_PRICE_TR_IDS,
             self._ovrs_price),
            ("GET", "/overseas-stock/v1/trading/inquire-balance", "ovrs_balance",
             OVRS_BALANCE_TR_IDS, self._ovrs_balance),
            ("GET", "/overseas-stock/v1/trading/inquire-ccnl", "ovrs_ccnl", OVRS_CCNL_TR_IDS,
             self._ovrs_ccnl),
            ("GET", "/overseas-stock/v1/trading/inquire-psamount", "ovrs_psamount",
             OVRS_PSAMOUNT_TR_IDS, self._ovrs_psamount),
        ]
        app = web.Application()
        for env in Environment:
            p = f"/{env.value}"
            routes = [
                web.post(p + "/oauth2/tokenP", self._bind(self._token, env)),
                web.post(p + "/oauth2/revokeP", self._bind(self._revoke, env)),
                web.post(p + "/oauth2/Approval", self._bind(self._approval, env)),
                web.post(p + "/uapi/hashkey", self._bind(self._hashkey, env)),
            ]
            for method, path, endpoint, tr_ids, handler in uapi:
                post = method == "POST"
                work = self._uapi(env, endpoint, tr_ids, handler, post=post)
                url = p + ("/uapi" + path if path.startswith("/") else stock + path)
                # web.get also routes HEAD, which the simulator has always answered.
                routes.append(web.post(url, work) if post else web.get(url, work))
            app.add_routes(routes)
        return app

    @staticmethod
    def _bind(
        handler: Callable[[web.Request, Environment], Awaitable[web.StreamResponse]],
        env: Environment,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def bound(request: web.Request) -> web.StreamResponse:
            return await handler(request, env)

        return bound

    # -- shared plumbing ---------------------------------------------------------------
    def _record(self, request: web.Request, env: Environment, endpoint: str) -> RecordedRequest:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            env=env,
            endpoint=endpoint,
            tr_id=request.headers.get("tr_id", ""),
            time=self._sim.now(),
            app_key=request.headers.get("appkey", ""),
            tr_cont=request.headers.get("tr_cont", ""),
        )
        self._sim.requests.append(record)
        return record

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        """Close the TCP connection without an answer."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        """Never answer; when the simulator stops, drop the connection."""
        await self._sim.stopping.wait()
        return await self._drop(request)

    async def _plain_fault(
        self, request: web.Request, fault: Fault, record: RecordedRequest, oauth: bool
    ) -> web.StreamResponse | None:
        """Answer a fault that replaces the whole request, or None to carry on."""
        kind = fault.kind
        if kind in ("timeout_after_accept", "reject_after_accept"):
            return None
        record.msg_cd = kind
        if kind == "hang":
            return await self._hang(request)
        if kind == "drop":
            return await self._drop(request)
        if kind == "http_5xx":
            status = fault.param_int("status", 502)
            record.status = status
            return web.Response(
                status=status,
                text=f"<html><body><h1>{status} Server Error</h1></body></html>",
                content_type="text/html",
            )
        msg1 = fault.param_str("msg1", message_for(kind))
        if oauth:
            status = fault.param_int("status", 403)
            record.status = status
            return _json({"error_code": kind, "error_description": msg1}, status)
        status = fault.param_int("status", 500)
        record.status = status
        body = {"rt_cd": fault.param_str("rt_cd", "1"), "msg_cd": kind, "msg1": msg1}
        return _json(body, status, {"tr_id": record.tr_id, "tr_cont": "D"})

    async def _begin(
        self, request: web.Request, env: Environment, endpoint: str, *, oauth: bool
    ) -> tuple[RecordedRequest, Fault | None, web.StreamResponse | None]:
        """Record the request and take its fault; an answer here replaces the whole call."""
        record = self._record(request, env, endpoint)
        fault = self._sim.faults.take(endpoint)
        if fault is None:
            return record, None, None
        return record, fault, await self._plain_fault(request, fault, record, oauth)

    async def _oauth_body(self, request: web.Request) -> dict[str, str]:
        try:
            raw = await request.json()
        except (ValueError, UnicodeDecodeError):
            raw = None
        if not isinstance(raw, dict):
            raise AuthRefusal("EGW00103")
        return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}

    # -- /oauth2 -------------------------------------------------------------------------
    async def _oauth(
        self,
        request: web.Request,
        env: Environment,
        endpoint: str,
        work: Callable[[dict[str, str]], JsonBody],
    ) -> web.StreamResponse:
        record, _, answer = await self._begin(request, env, endpoint, oauth=True)
        if answer is not None:
            return answer
        try:
            body = await self._oauth_body(request)
            record.app_key = body.get("appkey", "")
            result = work(body)
        except AuthRefusal as refusal:
            record.status, record.msg_cd = refusal.status, refusal.error_code
            return _json(refusal.body(), refusal.status)
        record.status = 200
        return _json(result)

    async def _token(self, request: web.Request, env: Environment) -> web.StreamResponse:
        def work(body: dict[str, str]) -> JsonBody:
            if body.get("grant_type") != "client_credentials":
                raise AuthRefusal("EGW00103")
            token = self._sim.credentials.issue_token(
                env, body.get("appkey", ""), body.get("appsecret", "")
            )
            return {
                "access_token": token.value,
                "access_token_token_expired": kst_stamp(token.expires_at),
                "token_type": "Bearer",
                "expires_in": max(0, int(token.expires_at - self._sim.now())),
            }

        return await self._oauth(request, env, "token", work)

    async def _revoke(self, request: web.Request, env: Environment) -> web.StreamResponse:
        def work(body: dict[str, str]) -> JsonBody:
            self._sim.credentials.revoke(
                env, body.get("appkey", ""), body.get("appsecret", ""), body.get("token", "")
            )
            return {"code": 200, "message": "접근토큰 폐기에 성공하였습니다"}

        return await self._oauth(request, env, "revoke", work)

    async def _approval(self, request: web.Request, env: Environment) -> web.StreamResponse:
        def work(body: dict[str, str]) -> JsonBody:
            if body.get("grant_type") != "client_credentials":
                raise AuthRefusal("EGW00103")
            key = self._sim.credentials.issue_approval(
                env, body.get("appkey", ""), body.get("secretkey", "")
            )
            return {"approval_key": key}

        return await self._oauth(request, env, "approval", work)

    async def _hashkey(self, request: web.Request, env: Environment) -> web.StreamResponse:
        record, _, answer = await self._begin(request, env, "hashkey", oauth=False)
        if answer is not None:
            return answer
        try:
            self._identify(request, env)
            raw = await self._json_body(request)
        except KisRefusal as refusal:
            return self._refusal(record, refusal)
        text = _dumps(raw)
        record.status = 200
        return _json({"JsonBody": raw, "HASH": hashlib.sha256(text.encode()).hexdigest()})

    # -- /uapi ---------------------------------------------------------------------------
    def _identify(self, request: web.Request, env: Environment) -> SimAccount:
        app_key = request.headers.get("appkey", "")
        account = self._sim.lookup(app_key) if app_key else None
        if account is None or account.env is not env:
            raise gateway("EGW00103")
        sent = request.headers.get("appsecret", "").encode()
        if not hmac.compare_digest(account.app_secret.encode(), sent):
            raise gateway("EGW00105")
        return account

    async def _json_body(self, request: web.Request) -> object:
        try:
            return await request.json()
        except (ValueError, UnicodeDecodeError):
            raise bad_input("JSON") from None

    def _refusal(self, record: RecordedRequest, refusal: KisRefusal) -> web.Response:
        record.status, record.msg_cd = refusal.status, refusal.msg_cd
        return _json(refusal.body(), refusal.status, {"tr_id": record.tr_id, "tr_cont": "D"})

    def _uapi(
        self,
        env: Environment,
        endpoint: str,
        tr_ids: Mapping[Environment, Collection[str]],
        handler: Handler,
        *,
        post: bool = False,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            record, fault, answer = await self._begin(request, env, endpoint, oauth=False)
            if answer is not None:
                return answer
            try:
                account = self._identify(request, env)
                if not self._sim.allow_request(account):
                    raise gateway("EGW00201")
                self._sim.credentials.check_bearer(
                    request.headers.get("authorization", ""), account.app_key
                )
                check_tr_id(env, record.tr_id, tr_ids)
                if request.headers.get("custtype", "") != "P":
                    raise bad_input("CUSTTYPE")
                if post and not request.headers.get("content-type", "").lower().startswith(
                    "application/json"
                ):
                    raise bad_input("CONTENT_TYPE")
                body, tr_cont = await handler(Call(request, env, account, record.tr_id, fault))
            except KisRefusal as refusal:
                answer = self._refusal(record, refusal)
                if fault is not None and fault.kind == "timeout_after_accept":
                    return await self._lost_answer(request, fault)
                return answer
            record.status = 200
            record.msg_cd = str(body.get("msg_cd", ""))
            if fault is not None and fault.kind == "timeout_after_accept":
                return await self._lost_answer(request, fault)
            headers = {"tr_id": record.tr_id, "tr_cont": tr_cont, "gt_uid": self._sim.gt_uid()}
            return _json(body, 200, headers)

        return handle

    async def _lost_answer(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.param_str("then", "hang") == "drop":
            return await self._drop(request)
        return await self._hang(request)

    async def _order_cash(self, call: Call) -> tuple[JsonBody, str]:
        body = string_body(await self._json_body(call.request))
        place = parse_order_cash(call.env, call.tr_id, body, call.account, self._sim.market)
        self._sim.check_market_open()
        order = self._sim.broker.place(call.account, place)
        reject = call.fault is not None and call.fault.kind == "reject_after_accept"
        self._sim.after_order(order, reject=reject)
        if call.env is Environment.REAL:
            return _order_answer(ORDER_OK_REAL, order)
        paper = ORDER_OK_PAPER_BUY if place.side is Side.BUY else ORDER_OK_PAPER_SELL
        return _order_answer(paper, order)

    async def _rvsecncl(self, call: Call) -> tuple[JsonBody, str]:
        body = string_body(await self._json_body(call.request))
        plan = parse_rvsecncl(call.env, body, call.account)
        original = self._sim.broker.order(plan.original_odno)
        if original is not None and not plan.cancel and plan.ord_dvsn not in ("01", "03", "04"):
            check_limit_price(self._sim.market, original.symbol, plan.price)
        self._sim.check_market_open()
        order = self._sim.broker.revise_or_cancel(
            call.account,
            plan.original_odno,
            cancel=plan.cancel,
            qty_all=plan.qty_all,
            qty=plan.qty,
            price=plan.price,
            ord_dvsn=plan.ord_dvsn,
            tr_id=call.tr_id,
            body=body,
        )
        if not plan.cancel:
            self._sim.after_order(order, reject=False)
        ok = ORDER_OK_REAL if call.env is Environment.REAL else ORDER_OK_PAPER_RVSECNCL
        return _order_answer(ok, order)

    async def _price(self, call: Call) -> tuple[JsonBody, str]:
        query = call.request.query
        if query.get("FID_COND_MRKT_DIV_CODE") not in ("J", "NX", "UN"):
            raise bad_input("FID_COND_MRKT_DIV_CODE")
        if "FID_INPUT_ISCD" not in query:
            raise bad_input("FID_INPUT_ISCD")
        quote = self._sim.market.get(query["FID_INPUT_ISCD"])
        if quote is None:
            raise KisRefusal("KIOK0560", rt_cd="7")
        return {**_inquiry_ok(call.env), "output": inquiries.price_output(quote)}, "D"

    async def _balance(self, call: Call) -> tuple[JsonBody, str]:
        query = call.request.query
        inquiries.require(query, inquiries.BALANCE_PARAMS)
        inquiries.check_account(query, call.account)
        if query["INQR_DVSN"] not in ("01", "02"):
            raise bad_input("INQR_DVSN")
        rows = inquiries.balance_rows(call.account, self._sim.market)
        page = self._paginate(call, rows, self._sim.balance_page_rows[call.env])
        summary = [inquiries.balance_summary(call.account, self._sim.market)]
        return _page_answer(call.env, page, summary)

    async def _psbl(self, call: Call) -> tuple[JsonBody, str]:
        query = call.request.query
        inquiries.require(query, inquiries.PSBL_PARAMS)
        inquiries.check_account(query, call.account)
        output = inquiries.buyable(call.account, self._sim.market, query)
        return {**_inquiry_ok(call.env), "output": output}, "D"

    async def _ccld(self, call: Call) -> tuple[JsonBody, str]:
        query = call.request.query
        inquiries.require(query, inquiries.CCLD_PARAMS)
        inquiries.check_account(query, call.account)
        orders = inquiries.select_orders(self._sim.broker.orders, call.account, query)
        rows = [inquiries.ccld_row(order) for order in orders]
        page = self._paginate(call, rows, self._sim.executions_page_rows[call.env])
        return _page_answer(call.env, page, inquiries.ccld_summary(orders))

    # -- REAL only: realised P&L, reservation orders ------------------------------------------
    async def _rlz_pl(self, call: Call) -> tuple[JsonBody, str]:
        query = call.request.query
        inquiries.require(query, (*inquiries.BALANCE_PARAMS, "COST_ICLD_YN"))
        inquiries.check_account(query, call.account)
        rows = inquiries.balance_rows(call.account, self._sim.market)
        page = self._paginate(call, rows, self._sim.balance_page_rows[call.env])
        day = kst_date(self._sim.now())
        summary = [inquiries.realised_summary(call.account, self._sim.market, day)]
        return _page_answer(call.env, page, summary)

    async def _resv(self, call: Call) -> tuple[JsonBody, str]:
        body = string_body(await self._json_body(call.request))
        item = self._sim.reservations.place(call.account, body)
        self._sim.notify_changed()
        return {**_ok(RESV_OK), "output": {"RSVN_ORD_SEQ": item.seq}}, "D"

    async def _resv_ccnl(self, call: Call) -> tuple[JsonBody, str]:
        rows = self._sim.reservations.listing(call.account, call.request.query)
        page = self._paginate(call, rows, RESV_PAGE_ROWS, ctx="200")
        body: JsonBody = {
            **_inquiry_ok(call.env),
            "ctx_area_fk200": page.fk100,
            "ctx_area_nk200": page.nk100,
            "output": page.rows,
        }
        return body, page.tr_cont

    async def _resv_rvsecncl(self, call: Call) -> tuple[JsonBody, str]:
        body = string_body(await self._json_body(call.request))
        if call.tr_id != kis_reservations.CANCEL_TR:
            raise refused("APBK1001")  # the simulator cancels reservations; it does not revise
        self._sim.reservations.cancel(call.account, body)
        self._sim.notify_changed()
        return {**_ok(RESV_OK), "output": {"NRML_PRCS_YN": "Y"}}, "D"

    # -- US stocks ---------------------------------------------------------------------------
    async def _ovrs_order(self, call: Call) -> tuple[JsonBody, str]:
        body = string_body(await self._json_body(call.request))
        self._sim.check_market_open()
        order = self._sim.us.place(call.account, call.env, call.tr_id, body)
        reject = call.fault is not None and call.fault.kind == "reject_after_accept"
        self._sim.after_us_order(order, reject=reject)
        output = {"KRX_FWDG_ORD_ORGNO": order.orgno, "ODNO": order.odno, "ORD_TMD": order.time}
        if call.env is Environment.REAL:
            return {**_ok(ORDER_OK_REAL), "output": output}, "D"
        paper = ORDER_OK_PAPER_BUY if order.side is Side.BUY else ORDER_OK_PAPER_SELL
        return {**_ok(paper), "output": output}, "D"

    async def _ovrs_rvsecncl(self, call: Call) -> tuple[JsonBody, str]:
        body = string_body(await self._json_body(call.request))
        order = self._sim.us.cancel(call.account, body)
        self._sim.notify_changed()
        output = {"KRX_FWDG_ORD_ORGNO": order.orgno, "ODNO": order.odno,
                  "ORD_TMD": order.time}
        ok = ORDER_OK_REAL if call.env is Environment.REAL else ORDER_OK_PAPER_RVSECNCL
        return {**_ok(ok), "output": output}, "D"

    async def _ovrs_price(self, call: Call) -> tuple[JsonBody, str]:
        output = overseas.price_output(self._sim.us, call.request.query)
        return {**_inquiry_ok(call.env), "output": output}, "D"

    async def _ovrs_balance(self, call: Call) -> tuple[JsonBody, str]:
        query = call.request.query
        inquiries.require(query, ("CANO", "ACNT_PRDT_CD", "OVRS_EXCG_CD", "TR_CRCY_CD",
                                  "CTX_AREA_FK200", "CTX_AREA_NK200"))
        inquiries.check_account(query, call.account)
        exchange = query["OVRS_EXCG_CD"]
        if exchange not in overseas.ORDER_EXCHANGES:
            raise bad_input("OVRS_EXCG_CD")
        rows = overseas.balance_rows(self._sim.us, call.account, exchange)
        page = self._paginate(call, rows, self._sim.balance_page_rows[call.env], ctx="200")
        return _page_answer(call.env, page, overseas.balance_summary(rows), ctx="200")

    async def _ovrs_ccnl(self, call: Call) -> tuple[JsonBody, str]:
        query = call.request.query
        inquiries.require(query, ("CANO", "ACNT_PRDT_CD", "PDNO", "ORD_STRT_DT", "ORD_END_DT",
                                  "SLL_BUY_DVSN", "CCLD_NCCS_DVSN", "OVRS_EXCG_CD",
                                  "SORT_SQN", "ORD_DT", "ORD_GNO_BRNO", "ODNO",
                                  "CTX_AREA_NK200", "CTX_AREA_FK200"))
        inquiries.check_account(query, call.account)
        orders = overseas.select_orders(self._sim.us, call.account, call.env, query)
        rows = [overseas.ccnl_row(order) for order in orders]
        page = self._paginate(call, rows, self._sim.executions_page_rows[call.env], ctx="200")
        body: JsonBody = {
            **_inquiry_ok(call.env),
            "ctx_area_fk200": page.fk100,
            "ctx_area_nk200": page.nk100,
            "output": page.rows,
        }
        return body, page.tr_cont

    async def _ovrs_psamount(self, call: Call) -> tuple[JsonBody, str]:
        query = call.request.query
        inquiries.require(query, ("CANO", "ACNT_PRDT_CD", "OVRS_EXCG_CD", "OVRS_ORD_UNPR",
                                  "ITEM_CD"))
        inquiries.check_account(query, call.account)
        output = overseas.psamount_output(self._sim.us, call.account, query)
        return {**_inquiry_ok(call.env), "output": output}, "D"

    @staticmethod
    def _paginate(
        call: Call, rows: list[inquiries.Row], size: int, ctx: str = "100"
    ) -> inquiries.Page:
        return inquiries.paginate(
            rows, size, call.request.headers.get("tr_cont", ""), call.request.query,
            call.account, ctx,
        )

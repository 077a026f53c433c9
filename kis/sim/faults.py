"""Switchable faults per endpoint: each fires `count` times, then clears itself.

Endpoints: token, revoke, approval, hashkey, order, rvsecncl, price, balance, psbl,
ccld, the overseas ovrs_order, ovrs_rvsecncl, ovrs_price, ovrs_balance, ovrs_ccnl,
ovrs_psamount, the REAL-only rlz_pl, resv, resv_ccnl, resv_rvsecncl, `*` (any REST
endpoint), ws.

REST kinds:
- a KIS code (`EGW00201`, `EGW00123`, `OPSQ0001`, `APBK0952`, …): answered with that
  code; params `status` (HTTP, default 500; 403 on /oauth2), `msg1`, `rt_cd`.
- `http_5xx`: an HTML body, no JSON; param `status` (default 502).
- `hang`: never answers (until the simulator stops).
- `drop`: closes the TCP connection without an answer.
- `timeout_after_accept` (order, rvsecncl): the order IS processed and recorded, then
  the answer is lost; param `then` = `hang` (default) or `drop`.
- `reject_after_accept` (order): answered as accepted, then refused in the fill notice.

WebSocket kinds (fire on the next subscribe message):
- `refuse_tr_key`: the invalid tr_key answer (as for a wrong HTS ID).
- `silent_drop`: the connection is dropped without an answer and without a close frame.
- `drop`: answered with success, then dropped without a close frame.
- `already_in_use`: the OPSP8996 answer.
- an `OPSP…` code: answered with that code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kis.sim.codes import looks_like_code

REST_ENDPOINTS = frozenset(
    {"token", "revoke", "approval", "hashkey", "order", "rvsecncl", "price", "balance",
     "psbl", "ccld", "ovrs_order", "ovrs_rvsecncl", "ovrs_price", "ovrs_balance",
     "ovrs_ccnl", "ovrs_psamount", "rlz_pl", "resv", "resv_ccnl", "resv_rvsecncl", "*"}
)
ORDER_ENDPOINTS = frozenset(
    {"order", "rvsecncl", "ovrs_order", "ovrs_rvsecncl", "resv", "resv_rvsecncl"}
)
WS_ENDPOINT = "ws"
REST_KINDS = frozenset(
    {"http_5xx", "hang", "drop", "timeout_after_accept", "reject_after_accept"}
)
ORDER_ONLY_KINDS = frozenset({"timeout_after_accept", "reject_after_accept"})
WS_KINDS = frozenset({"refuse_tr_key", "silent_drop", "drop", "already_in_use"})


@dataclass(slots=True)
class Fault:
    endpoint: str
    kind: str
    remaining: int
    params: dict[str, object] = field(default_factory=dict)
    fired: int = 0

    def param_int(self, name: str, default: int) -> int:
        value = self.params.get(name, default)
        return value if isinstance(value, int) else int(str(value))

    def param_str(self, name: str, default: str) -> str:
        value = self.params.get(name)
        return default if value is None else str(value)


class Faults:
    """The fault plan. `add()` queues one; the server `take()`s them as requests arrive."""

    def __init__(self) -> None:
        self._queue: list[Fault] = []
        self.history: list[tuple[str, str]] = []

    def add(self, endpoint: str, kind: str, count: int = 1, **params: object) -> Fault:
        if count < 1:
            raise ValueError("count must be at least 1")
        if endpoint == WS_ENDPOINT:
            if kind not in WS_KINDS and not (kind.startswith("OPSP") and looks_like_code(kind)):
                raise ValueError(f"unknown WebSocket fault kind {kind!r}")
        elif endpoint in REST_ENDPOINTS:
            if kind not in REST_KINDS and not looks_like_code(kind):
                raise ValueError(f"unknown fault kind {kind!r}")
            if kind in ORDER_ONLY_KINDS and endpoint not in ORDER_ENDPOINTS:
                raise ValueError(f"{kind} applies to order endpoints only")
        else:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        fault = Fault(endpoint, kind, count, dict(params))
        self._queue.append(fault)
        return fault

    def take(self, endpoint: str) -> Fault | None:
        """The first pending fault for `endpoint` (or `*` for REST), consuming one firing."""
        for fault in self._queue:
            if fault.endpoint == endpoint or (
                fault.endpoint == "*" and endpoint != WS_ENDPOINT
            ):
                fault.remaining -= 1
                fault.fired += 1
                if fault.remaining <= 0:
                    self._queue.remove(fault)
                self.history.append((endpoint, fault.kind))
                return fault
        return None

    def pending(self, endpoint: str | None = None) -> list[Fault]:
        return [f for f in self._queue if endpoint is None or f.endpoint == endpoint]

    def clear(self) -> None:
        self._queue.clear()

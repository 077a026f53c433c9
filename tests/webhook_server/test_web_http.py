"""The HTTP contract of SPEC section 4, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from webhook_server.access_log import MaskingAccessLogger, mask_path
from webhook_server.alert import Alert
from webhook_server.app import MAX_BODY_BYTES, create_app, make_runner
from webhook_server.intake import UNKNOWN_TOKEN, Accepted, Duplicate, IntakeResult
from webhook_server.metrics import Metrics

TOKEN = "tok_Abcdefghijklmnopqrstuv"  # URL-safe, 24 characters
OTHER_TOKEN = "Zyxwvutsrqponmlkjihgfedcba"
ALERT = {"ticker": "005930", "action": "buy", "quantity": "1"}
FIXED_NOW = datetime(2025, 3, 4, 1, 0, tzinfo=UTC)


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


@dataclass
class MemoryIntake:
    """Test double for the storage-backed intake: SPEC's duplicate rules in memory."""

    tokens: dict[str, str] = field(default_factory=lambda: {TOKEN: "user-1"})
    by_id: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    by_body: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    accepted: list[tuple[str, Alert, datetime]] = field(default_factory=list)
    fail_with: Exception | None = None

    async def submit(
        self, token: str, body: bytes, alert: Alert, received_at: datetime, client: str = ""
    ) -> IntakeResult:
        if self.fail_with is not None:
            raise self.fail_with
        user = self.tokens.get(token)
        if user is None:
            return UNKNOWN_TOKEN
        if alert.id is not None:
            key, store, window = (user, alert.id), self.by_id, timedelta(hours=24)
        else:
            key, store = (user, hashlib.sha256(body).hexdigest()), self.by_body
            window = timedelta(seconds=60)
        seen = store.get(key)
        if seen is not None and received_at - seen[1] < window:
            return Duplicate(seen[0])
        alert_id = f"a{len(self.accepted) + 1}"
        store[key] = (alert_id, received_at)
        self.accepted.append((user, alert, received_at))
        return Accepted(alert_id)


@dataclass
class Health:
    ok: bool = True
    reason: str = ""
    raises: bool = False

    async def __call__(self) -> tuple[bool, str]:
        if self.raises:
            raise RuntimeError("database exploded")
        return self.ok, self.reason


@dataclass
class Service:
    client: TestClient[web.Request, web.Application]
    intake: MemoryIntake
    health: Health
    metrics: Metrics
    clock: list[datetime]

    @property
    def port(self) -> int:
        port = self.client.server.port
        assert port is not None
        return port


@asynccontextmanager
async def serve(**options: Any) -> AsyncIterator[Service]:
    intake, health, metrics = MemoryIntake(), Health(), Metrics()
    clock = [FIXED_NOW]
    app = create_app(
        intake=intake, metrics=metrics, health=health, clock=lambda: clock[0], **options
    )
    server = TestServer(app, host="127.0.0.1", port=0)
    # Runner options go to start_server (TestServer's constructor drops them).
    await server.start_server(access_log_class=MaskingAccessLogger)
    async with TestClient(server) as client:
        yield Service(client, intake, health, metrics, clock)


def padded(size: int) -> bytes:
    """A valid alert of exactly `size` bytes."""
    base = json.dumps({**ALERT, "pad": ""}).encode()
    raw = json.dumps({**ALERT, "pad": "x" * (size - len(base))}).encode()
    assert len(raw) == size
    return raw


async def post(service: Service, body: bytes | str, *, token: str = TOKEN,
               **kwargs: Any) -> tuple[int, dict[str, Any]]:
    response = await service.client.post(f"/hook/{token}", data=body, **kwargs)
    payload = await response.json(content_type=None)
    return response.status, payload


# --- 200 accepted / duplicate ---------------------------------------------------------


async def test_accepted_then_duplicate_by_id() -> None:
    async with serve() as service:
        message = json.dumps({**ALERT, "id": "L1"})
        assert await post(service, message) == (200, {"status": "accepted", "alert_id": "a1"})
        service.clock[0] += timedelta(hours=23)
        other_body = json.dumps({**ALERT, "id": "L1", "comment": "again"})
        assert await post(service, other_body) == (200, {"status": "duplicate", "alert_id": "a1"})
        assert len(service.intake.accepted) == 1
        user, alert, received_at = service.intake.accepted[0]
        assert (user, alert.symbol, alert.id, received_at) == ("user-1", "005930", "L1", FIXED_NOW)


async def test_same_body_within_60_seconds_is_duplicate() -> None:
    async with serve() as service:
        message = json.dumps(ALERT)
        assert (await post(service, message))[1]["status"] == "accepted"
        service.clock[0] += timedelta(seconds=59)
        assert await post(service, message) == (200, {"status": "duplicate", "alert_id": "a1"})
        service.clock[0] += timedelta(seconds=2)
        assert await post(service, message) == (200, {"status": "accepted", "alert_id": "a2"})


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", None,
                                          "application/x-www-form-urlencoded"])
async def test_body_parsed_as_json_whatever_the_content_type(content_type: str | None) -> None:
    async with serve() as service:
        headers = {} if content_type is None else {"Content-Type": content_type}
        status, payload = await post(service, json.dumps(ALERT).encode(), headers=headers)
        assert (status, payload["status"]) == (200, "accepted")


# --- 404: unknown token == unknown path -----------------------------------------------


async def test_unknown_token_is_byte_for_byte_an_unknown_path() -> None:
    async with serve() as service:
        answers = []
        for method, path in [
            ("POST", f"/hook/{OTHER_TOKEN}"),  # well-formed, nobody's token
            ("POST", "/hook/short"),  # malformed token
            ("POST", "/hook/" + "x" * 200),
            ("POST", f"/hook/{TOKEN}/extra"),
            ("POST", "/hook/"),
            ("GET", "/nope"),
            ("POST", "/"),
            ("GET", "/hook"),
        ]:
            response = await service.client.request(method, path, data=json.dumps(ALERT))
            answers.append(
                (response.status, response.headers["Content-Type"], await response.read(),
                 response.headers.get("Server"))
            )
        assert answers[0] == (404, "application/json", b'{"error":"not found"}', "moahook")
        assert all(answer == answers[0] for answer in answers), answers
        assert service.intake.accepted == []


async def test_405_does_not_leak_and_is_the_same_for_every_token() -> None:
    async with serve() as service:
        first = await service.client.get(f"/hook/{TOKEN}")
        second = await service.client.put(f"/hook/{OTHER_TOKEN}")
        assert first.status == second.status == 405
        assert await first.read() == await second.read() == b'{"error":"method not allowed"}'
        assert "aiohttp" not in first.headers.get("Server", "")
        health = await service.client.post("/healthz")
        assert health.status == 405 and await health.json() == {"error": "method not allowed"}


# --- 400 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"ticker": 005930, "action": "buy", "quantity": 1}',
         'ticker: the value 005930 is not quoted, so the body is not valid JSON. TradingView '
         'placeholders must be quoted in the alert message, e.g. "ticker": "{{ticker}}"'),
        (b'{"ticker": "005930", "quantity": 1}', "action: required (buy or sell)"),
        (b'{"ticker": "005930", "action": "hold", "quantity": 1}',
         "action: 'hold' is not buy or sell"),
        (b'{"ticker": "005930", "action": "buy", "quantity": 1, "amount": 5}',
         "quantity, amount: give exactly one of quantity, amount, position"),
        (b'{"ticker": "005930", "action": "buy", "quantity": "0.5"}',
         "quantity: below 1 share after rounding down"),
        (b'{"ticker": "AAPL", "action": "buy", "quantity": 1}',
         "exchange: 'AAPL' needs its exchange: NASDAQ:AAPL, or an \"exchange\" field "
         "(\"{{exchange}}\")"),
        (b'{"ticker": "005930", "action": "buy", "quantity": 1, "order_type": "limit"}',
         "price: required for a limit order"),
    ],
)
async def test_invalid_message_400_names_the_field(body: bytes, error: str) -> None:
    async with serve() as service:
        assert await post(service, body) == (400, {"error": error})
        assert service.intake.accepted == []


async def test_invalid_body_with_unknown_token_gets_the_same_400() -> None:
    # Validation comes before the token lookup, so a 400 says nothing about tokens.
    async with serve() as service:
        known = await post(service, b"{", token=TOKEN)
        unknown = await post(service, b"{", token=OTHER_TOKEN)
        assert known == unknown and known[0] == 400


# --- 413 ------------------------------------------------------------------------------


async def test_body_limit_is_exactly_16_kib() -> None:
    assert MAX_BODY_BYTES == 16_384
    async with serve() as service:
        status, payload = await post(service, padded(16_384))
        assert (status, payload["status"]) == (200, "accepted")
        status, payload = await post(service, padded(16_385))
        assert status == 413
        assert payload == {"error": "body too large: at most 16,384 bytes are accepted"}
        assert len(service.intake.accepted) == 1


async def test_body_limit_with_chunked_bodies() -> None:
    async def chunks(raw: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 1000):
            yield raw[start : start + 1000]

    async with serve() as service:
        for size, expected in [(16_384, 200), (16_385, 413), (100_000, 413)]:
            raw = padded(size)
            response = await service.client.post(f"/hook/{TOKEN}", data=chunks(raw))
            assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
            assert response.status == expected, size
            assert "application/json" in response.headers["Content-Type"]


async def raw_exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_content_length_claiming_too_much_is_refused_without_waiting() -> None:
    async with serve() as service:
        answer = await raw_exchange(
            service.port,
            f"POST /hook/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 16385\r\n\r\n".encode()
            + b'{"ticker"',
        )
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b'{"error":"body too large' in answer


async def test_content_length_claiming_too_little_reads_only_what_it_claims() -> None:
    async with serve() as service:
        body = padded(16_385)
        answer = await raw_exchange(
            service.port,
            f"POST /hook/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n".encode()
            + body,
        )
        # The 10 bytes are not JSON; the rest is not a request. Either way a 400, never a 5xx.
        assert answer.split(b" ", 2)[1] == b"400"
        assert b" 500 " not in answer
        assert service.intake.accepted == []
        assert (await service.client.get("/healthz")).status == 200


async def test_body_trickling_in_too_slowly_gets_408() -> None:
    async with serve(body_timeout=0.2) as service:
        answer = await raw_exchange(
            service.port,
            f"POST /hook/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode(),
        )
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert answer.endswith(b'{"error":"the request body did not arrive in time"}')


async def test_broken_chunked_framing_is_a_400_not_a_500() -> None:
    async with serve() as service:
        answer = await raw_exchange(
            service.port,
            f"POST /hook/{TOKEN} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\n{\"tic\r\nzz\r\n".encode(),
        )
        assert answer.split(b" ", 2)[1] == b"400"


async def test_garbage_gzip_is_a_400_not_a_500() -> None:
    async with serve() as service:
        response = await service.client.post(
            f"/hook/{TOKEN}", data=b"not gzip at all", headers={"Content-Encoding": "gzip"}
        )
        assert response.status == 400


# --- 403 and forwarded headers ----------------------------------------------------------


async def test_sender_outside_trusted_ips_gets_403() -> None:
    async with serve(trusted_ips=(net("52.89.214.238/32"), net("34.212.75.30/32"))) as service:
        assert await post(service, json.dumps(ALERT)) == (403, {"error": "forbidden"})
        assert service.intake.accepted == []
    async with serve(trusted_ips=(net("127.0.0.0/8"),)) as service:
        assert (await post(service, json.dumps(ALERT)))[0] == 200


async def test_forwarded_header_ignored_without_trusted_proxies() -> None:
    async with serve(trusted_ips=(net("203.0.113.0/24"),)) as service:
        status, _ = await post(
            service, json.dumps(ALERT), headers={"X-Forwarded-For": "203.0.113.5"}
        )
        assert status == 403


async def test_forwarded_header_honoured_from_a_trusted_proxy() -> None:
    options = {"trusted_ips": (net("203.0.113.0/24"),), "trusted_proxies": (net("127.0.0.1"),)}
    async with serve(**options) as service:
        cases = [
            ({"X-Forwarded-For": "203.0.113.5"}, 200),
            # the right-most entry is what our proxy saw; spoofed entries to its left don't count
            ({"X-Forwarded-For": "203.0.113.5, 198.51.100.7"}, 403),
            ({"X-Forwarded-For": "198.51.100.7, 203.0.113.5"}, 200),
            ({"X-Forwarded-For": "203.0.113.5, 127.0.0.1"}, 200),  # a chain of our proxies
            ({"X-Forwarded-For": "garbage"}, 403),
            ({}, 403),  # the proxy itself is not a trusted sender
        ]
        for index, (headers, expected) in enumerate(cases):
            body = json.dumps({**ALERT, "id": str(index)})
            assert (await post(service, body, headers=headers))[0] == expected, headers


# --- health and metrics ---------------------------------------------------------------


async def test_healthz() -> None:
    async with serve() as service:
        response = await service.client.get("/healthz")
        assert (response.status, await response.json()) == (200, {"status": "ok"})
        service.health.ok, service.health.reason = False, "database unreachable"
        response = await service.client.get("/healthz")
        assert (response.status, await response.json()) == (
            503, {"status": "unavailable", "reason": "database unreachable"},
        )
        service.health.raises = True
        response = await service.client.get("/healthz")
        assert (response.status, await response.json()) == (
            503, {"status": "unavailable", "reason": "health check failed"},
        )


async def test_metrics_exposition() -> None:
    async with serve() as service:
        await post(service, json.dumps(ALERT))
        await post(service, json.dumps(ALERT))
        await post(service, b"{")
        service.metrics.kis_request_latency.labels("FHKST01010100").observe(0.004)
        service.metrics.kis_errors.labels("EGW00201").inc()
        service.metrics.websocket_connections.labels("connected").set(3)
        service.metrics.orders.labels("accepted").inc()
        response = await service.client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
        for line in [
            "moahook_alerts_received_total 3.0",
            "moahook_alerts_accepted_total 1.0",
            "moahook_alerts_duplicate_total 1.0",
            'moahook_alerts_invalid_total{reason="malformed"} 1.0',
            'moahook_webhook_responses_total{status="200"} 2.0',
            'moahook_kis_request_seconds_count{tr_id="FHKST01010100"} 1.0',
            'moahook_kis_errors_total{msg_cd="EGW00201"} 1.0',
            'moahook_websocket_connections{state="connected"} 3.0',
            'moahook_orders_total{outcome="accepted"} 1.0',
            "# TYPE moahook_fill_notices_total counter",
            "# TYPE moahook_telegram_send_failures_total counter",
            "# TYPE moahook_alerts_refused_total counter",
        ]:
            assert line in text, line


async def test_two_apps_in_one_process_have_separate_metrics() -> None:
    async with serve() as first, serve() as second:
        await post(first, json.dumps(ALERT))
        assert "moahook_alerts_accepted_total 1.0" in (await (await first.client.get(
            "/metrics")).text())
        assert "moahook_alerts_accepted_total 0.0" in (await (await second.client.get(
            "/metrics")).text())


# --- never leaking: 500s and logs ---------------------------------------------------------


class Captured(logging.Handler):
    def __init__(self, wanted: Callable[[logging.LogRecord], bool]) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.wanted = wanted
        self.arrived = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.wanted(record):
            self.arrived.set()

    def text(self) -> str:
        return "\n".join(
            record.getMessage() + (self.format(record) if record.exc_info else "")
            for record in self.records
        )


@asynccontextmanager
async def capture(name: str, wanted: Callable[[logging.LogRecord], bool]) -> AsyncIterator[
    Captured
]:
    handler = Captured(wanted)
    logger = logging.getLogger(name)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


async def test_unexpected_error_is_a_logged_500_without_detail() -> None:
    async with serve() as service, capture("webhook_server", lambda r: True) as logs:
        service.intake.fail_with = RuntimeError("storage broke at /var/secret/path")
        response = await service.client.post(f"/hook/{TOKEN}", data=json.dumps(ALERT))
        assert response.status == 500
        assert await response.read() == b'{"error":"internal error"}'
        await asyncio.wait_for(logs.arrived.wait(), 5)
        record = logs.records[0]
        assert record.levelno == logging.ERROR and record.exc_info is not None
        assert TOKEN not in record.getMessage()
        assert "/hook/****" in record.getMessage()
        metrics = (await (await service.client.get("/metrics")).text())
        assert 'moahook_webhook_responses_total{status="500"} 1.0' in metrics


async def test_access_log_masks_the_token() -> None:
    def is_hook(record: logging.LogRecord) -> bool:
        return "/hook/" in record.getMessage()

    async with capture("aiohttp.access", is_hook) as logs, serve() as service:
        await post(service, json.dumps(ALERT))
        await post(service, json.dumps(ALERT), token=OTHER_TOKEN)
        await asyncio.wait_for(logs.arrived.wait(), 5)
        text = logs.text()
        assert TOKEN not in text and OTHER_TOKEN not in text
        assert '"POST /hook/**** HTTP/1.1" 200' in text


def test_mask_path() -> None:
    assert mask_path(f"/hook/{TOKEN}") == "/hook/****"
    assert mask_path(f"/HOOK/{TOKEN}/x") == "/HOOK/****/x"
    assert mask_path("/healthz") == "/healthz"


async def test_make_runner_serves_with_masking_logger() -> None:
    intake = MemoryIntake()
    app = create_app(intake=intake, metrics=Metrics(), health=Health())
    runner = make_runner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        answer = await raw_exchange(
            port,
            f"POST /hook/{TOKEN} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Length: {len(json.dumps(ALERT))}\r\n\r\n{json.dumps(ALERT)}".encode(),
        )
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert len(intake.accepted) == 1
    finally:
        await runner.cleanup()


async def test_make_runner_settles_the_garbage_collector_once_started() -> None:
    """What is alive at start is frozen out of the collector (no long full collections
    while answering); a runner told not to leaves the collector alone."""
    gc.unfreeze()
    try:
        plain = make_runner(
            create_app(intake=MemoryIntake(), metrics=Metrics(), health=Health()),
            freeze_gc=False,
        )
        await plain.setup()
        await plain.cleanup()
        assert gc.get_freeze_count() == 0
        runner = make_runner(create_app(intake=MemoryIntake(), metrics=Metrics(), health=Health()))
        await runner.setup()
        await runner.cleanup()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_cleanup_contexts_run_around_the_app() -> None:
    events: list[str] = []

    async def resource(app: web.Application) -> AsyncIterator[None]:
        events.append("open")
        yield
        events.append("close")

    app = create_app(
        intake=MemoryIntake(), metrics=Metrics(), health=Health(), cleanup_ctx=[resource]
    )
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        assert events == ["open"]
        assert (await client.get("/healthz")).status == 200
    assert events == ["open", "close"]


@asynccontextmanager
async def served(**options: Any) -> AsyncIterator[int]:
    """The app as production serves it (`make_runner`) on a real socket; its port."""
    app = create_app(intake=MemoryIntake(), metrics=Metrics(), health=Health())
    runner = make_runner(app, freeze_gc=False, **options)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sent before it closed the connection (bounded wait for EOF)."""
    received = b""
    async with asyncio.timeout(within):
        while chunk := await reader.read(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST /hook/abc HTTP/1.1\r\nHost: x\r\nContent-Le"],
    ids=["idle", "headers-never-finished"],
)
async def test_idle_and_unfinished_connections_are_closed(sent: bytes) -> None:
    """A socket that sends nothing, or headers it never finishes, is closed by the
    server (it stayed open for minutes: descriptors could be exhausted)."""
    async with served(idle_timeout=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(sent)
            await writer.drain()
            assert await _closed_by_server(reader, within=5.0) == b""
        finally:
            writer.close()
            await writer.wait_closed()


async def test_a_kept_alive_connection_is_closed_once_idle() -> None:
    async with served(idle_timeout=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            answered = await _closed_by_server(reader, within=5.0)
            assert answered.startswith(b"HTTP/1.1 200 ")
        finally:
            writer.close()
            await writer.wait_closed()


async def test_malformed_requests_log_one_rate_limited_line_each_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each malformed request was a full traceback at ERROR: anyone could flood the log."""
    caplog.set_level(logging.DEBUG)
    async with served() as port:
        for _ in range(25):
            answer = await raw_exchange(
                port, f"GET /hook/{TOKEN} HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n".encode()
            )
            assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    server = [r for r in caplog.records if r.name == "webhook_server.http"]
    assert server, "the malformed requests are logged"
    assert len(server) <= 10  # rate-limited
    for record in server:
        assert record.levelno == logging.WARNING and record.exc_info is None
        assert "\n" not in record.getMessage() and "malformed request" in record.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

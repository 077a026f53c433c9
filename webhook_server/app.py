"""The aiohttp application: `POST /hook/{token}`, `GET /healthz`, `GET /metrics` (SPEC 4).

Built by `create_app`; the composition root adds its resources as cleanup contexts
(passed in, or appended to `app.cleanup_ctx` before the runner starts) and serves it
with `make_runner` so the access log masks webhook tokens.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from webhook_server.access_log import MaskingAccessLogger, mask_path
from webhook_server.alert import AlertError, parse_alert
from webhook_server.client_ip import IPNetwork, client_address, in_networks
from webhook_server.intake import Accepted, AlertIntake, Duplicate, Unavailable, UnknownToken
from webhook_server.metrics import CONTENT_TYPE, Metrics
from webhook_server.server_log import server_logger

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 16 * 1024  # 16,384 allowed, 16,385 refused (SPEC section 4)
BODY_TIMEOUT_SECONDS: Final = 10.0  # a body trickling in slower than this is dropped
# A connection that has not sent a whole request line and headers this long after it
# opened (or after its last answer) is closed: idle keep-alive and slow headers alike.
IDLE_TIMEOUT_SECONDS: Final = 15.0
TOKEN_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{16,128}")
SERVER_NAME: Final = "moahook"

HealthCheck = Callable[[], Awaitable[tuple[bool, str]]]
Clock = Callable[[], datetime]
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HookPolicy:
    trusted_ips: tuple[IPNetwork, ...] = ()
    trusted_proxies: tuple[IPNetwork, ...] = ()
    max_body: int = MAX_BODY_BYTES
    body_timeout: float = BODY_TIMEOUT_SECONDS


INTAKE_KEY: Final = web.AppKey("moahook.intake", AlertIntake)
METRICS_KEY: Final = web.AppKey("moahook.metrics", Metrics)
HEALTH_KEY: Final = web.AppKey[HealthCheck]("moahook.health")
CLOCK_KEY: Final = web.AppKey[Clock]("moahook.clock")
POLICY_KEY: Final = web.AppKey("moahook.hook_policy", HookPolicy)
Draining = Callable[[], bool]
DRAINING_KEY: Final[web.AppKey[Draining]] = web.AppKey("moahook.draining")


def _never() -> bool:
    return False


def create_app(
    *,
    intake: AlertIntake,
    metrics: Metrics,
    health: HealthCheck,
    trusted_ips: Sequence[IPNetwork] = (),
    trusted_proxies: Sequence[IPNetwork] = (),
    clock: Clock = utc_now,
    cleanup_ctx: Iterable[CleanupContext] = (),
    max_body: int = MAX_BODY_BYTES,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    draining: Callable[[], bool] | None = None,
) -> web.Application:
    """`draining()` True (SIGTERM): alerts are refused with 503 and the connection closed,
    so a proxy sends them, and the next ones on a kept-alive connection, elsewhere."""
    app = web.Application(
        middlewares=[_error_middleware],
        # Bounds request.read()/post() too; the hook handler reads by hand to answer JSON.
        client_max_size=max_body,
    )
    app[INTAKE_KEY] = intake
    app[METRICS_KEY] = metrics
    app[HEALTH_KEY] = health
    app[CLOCK_KEY] = clock
    app[DRAINING_KEY] = draining or _never
    app[POLICY_KEY] = HookPolicy(
        tuple(trusted_ips), tuple(trusted_proxies), max_body, body_timeout
    )
    app.cleanup_ctx.extend(cleanup_ctx)
    app.on_response_prepare.append(_hide_server_header)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post("/hook/{token}", _hook)
    return app


def make_runner(
    app: web.Application,
    *,
    access_log: logging.Logger | None = None,
    handle_signals: bool = False,
    shutdown_timeout: float = 10.0,
    freeze_gc: bool = True,
    idle_timeout: float = IDLE_TIMEOUT_SECONDS,
) -> web.AppRunner:
    """An `AppRunner` whose access log masks webhook tokens.

    `freeze_gc`: once the app has started, everything alive (modules, the ORM's
    mappings, caches filled at start) is moved out of the garbage collector's reach.
    Otherwise a full collection walks all of it: a pause of ~80 ms in which every
    webhook answer waits (at 1,000 alerts/s, the slowest few percent).

    `idle_timeout`: aiohttp's keep-alive timer runs from the moment a connection opens
    and after each answer, and closes a connection still waiting for a complete request
    then — so it bounds both idle connections and headers that never finish (without a
    proxy in front, descriptors cannot be exhausted that way). Malformed requests are
    logged as one rate-limited line each (`server_log`)."""
    if freeze_gc:
        app.on_startup.append(_freeze_gc)
    return web.AppRunner(
        app,
        access_log_class=MaskingAccessLogger,
        access_log=access_log or logging.getLogger("aiohttp.access"),
        handle_signals=handle_signals,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=idle_timeout,
        logger=server_logger(),
    )


async def _freeze_gc(app: web.Application) -> None:
    gc.collect()
    gc.freeze()


# --- responses ------------------------------------------------------------------------


def json_body(status: int, payload: dict[str, str]) -> web.Response:
    """Compact JSON, always the same bytes for the same payload."""
    return web.Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode(),
        content_type="application/json",
    )


def not_found() -> web.Response:
    """Unknown path and unknown token alike: nothing hints that tokens exist."""
    return json_body(404, {"error": "not found"})


async def _hide_server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME  # not aiohttp's version string


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404:
            return not_found()
        if exc.status == 405:
            response = json_body(405, {"error": "method not allowed"})
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        if exc.status >= 400:
            return json_body(exc.status, {"error": (exc.reason or "error").lower()})
        raise
    except Exception:
        # A bug, never client input: logged with the token masked, answered without detail.
        log.exception("unhandled error in %s %s", request.method, mask_path(request.path))
        return json_body(500, {"error": "internal error"})


DRAINING = "draining"


# --- handlers -------------------------------------------------------------------------


async def _healthz(request: web.Request) -> web.Response:
    try:
        ok, reason = await request.app[HEALTH_KEY]()
    except Exception:
        log.exception("health check failed")
        ok, reason = False, "health check failed"
    if ok:
        return json_body(200, {"status": "ok"})
    # A draining instance (SIGTERM) says so: load balancers stop sending it traffic.
    status = "draining" if reason == DRAINING else "unavailable"
    return json_body(503, {"status": status, "reason": reason})


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _hook(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    started = time.perf_counter()
    metrics.alerts_received.inc()
    status = 500  # unless the handler answers; the error middleware writes the 500
    try:
        response = await _handle_hook(request, metrics)
        status = response.status
        return response
    finally:
        metrics.webhook_responses.labels(str(status)).inc()
        metrics.webhook_latency.observe(time.perf_counter() - started)


async def _handle_hook(request: web.Request, metrics: Metrics) -> web.Response:
    if request.app[DRAINING_KEY]():
        response = json_body(503, {"error": "this instance is shutting down: send it again"})
        response.headers["Retry-After"] = "1"
        response.force_close()  # a kept-alive connection must not bring the next one here
        return response
    policy = request.app[POLICY_KEY]
    client = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), policy.trusted_proxies
    )
    if policy.trusted_ips and (client is None or not in_networks(client, policy.trusted_ips)):
        return json_body(403, {"error": "forbidden"})
    token = request.match_info["token"]
    if not TOKEN_PATTERN.fullmatch(token):
        return not_found()
    received_at = request.app[CLOCK_KEY]()

    try:
        async with asyncio.timeout(policy.body_timeout):
            body = await _read_body(request, policy.max_body)
    except TimeoutError:
        metrics.alerts_invalid.labels("malformed").inc()
        return json_body(408, {"error": "the request body did not arrive in time"})
    except _BodyUnreadable:
        metrics.alerts_invalid.labels("malformed").inc()
        return json_body(400, {"error": "the request body could not be read"})
    if body is None:
        metrics.alerts_invalid.labels("too_large").inc()
        return json_body(
            413, {"error": f"body too large: at most {policy.max_body:,} bytes are accepted"}
        )
    try:
        alert = parse_alert(body)
    except AlertError as exc:
        metrics.alerts_invalid.labels("malformed").inc()
        return json_body(400, {"error": str(exc)})

    result = await request.app[INTAKE_KEY].submit(
        token, body, alert, received_at, client=str(client or "")
    )
    match result:
        case Accepted(alert_id=alert_id):
            metrics.alerts_accepted.inc()
            return json_body(200, {"status": "accepted", "alert_id": alert_id})
        case Duplicate(alert_id=alert_id):
            metrics.alerts_duplicate.inc()
            return json_body(200, {"status": "duplicate", "alert_id": alert_id})
        case UnknownToken():
            return not_found()
        case Unavailable():
            response = json_body(
                503, {"error": "temporarily unavailable: the alert was not stored, send it again"}
            )
            response.headers["Retry-After"] = "1"
            return response


class _BodyUnreadable(Exception):
    """The body broke off or was badly encoded (chunked framing, compression)."""


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is over `limit` — whatever Content-Length claims, chunked
    or not."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    buffer = bytearray()
    try:
        while chunk := await request.content.readany():
            buffer += chunk
            if len(buffer) > limit:
                return None
    except (web.RequestPayloadError, HttpProcessingError, ConnectionError) as exc:
        raise _BodyUnreadable from exc
    return bytes(buffer)

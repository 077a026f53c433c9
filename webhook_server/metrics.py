"""Prometheus metrics (SPEC section 4), each `Metrics` on its own registry."""

from __future__ import annotations

from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


class Metrics:
    """All of moahook's metrics. Not the global registry: several apps may share a process."""

    def __init__(self, namespace: str = "moahook") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r, ns = self.registry, namespace
        self.alerts_received = Counter(
            "alerts_received", "Alert requests that reached the webhook handler",
            namespace=ns, registry=r,
        )
        self.alerts_accepted = Counter(
            "alerts_accepted", "Alerts stored and queued for the pipeline",
            namespace=ns, registry=r,
        )
        self.alerts_duplicate = Counter(
            "alerts_duplicate", "Repeats of an accepted alert (no second order)",
            namespace=ns, registry=r,
        )
        self.alerts_invalid = Counter(
            "alerts_invalid", "Alerts answered 400/413 (reason: malformed, too_large)",
            ["reason"], namespace=ns, registry=r,
        )
        self.alerts_refused = Counter(
            "alerts_refused", "Accepted alerts the pipeline refused, by reason code",
            ["reason"], namespace=ns, registry=r,
        )
        self.webhook_responses = Counter(
            "webhook_responses", "Responses of POST /hook/{token} by status code",
            ["status"], namespace=ns, registry=r,
        )
        self.webhook_latency = Histogram(
            "webhook_response_seconds", "Time to answer POST /hook/{token}",
            namespace=ns, registry=r, buckets=_LATENCY_BUCKETS,
        )
        self.orders = Counter(
            "orders", "Orders by outcome (accepted, rejected, unknown, failed)",
            ["outcome"], namespace=ns, registry=r,
        )
        self.fill_notices = Counter(
            "fill_notices", "Fill notices received from KIS", namespace=ns, registry=r,
        )
        self.kis_request_latency = Histogram(
            "kis_request_seconds", "KIS REST request latency by TR ID",
            ["tr_id"], namespace=ns, registry=r, buckets=_LATENCY_BUCKETS,
        )
        self.kis_errors = Counter(
            "kis_errors", "KIS error answers by msg_cd", ["msg_cd"], namespace=ns, registry=r,
        )
        self.websocket_connections = Gauge(
            "websocket_connections", "KIS fill-notice WebSocket connections by state",
            ["state"], namespace=ns, registry=r,
        )
        self.telegram_send_failures = Counter(
            "telegram_send_failures", "Telegram sends that failed", namespace=ns, registry=r,
        )
        self.instance = Gauge(
            "instance_info", "This instance's name (1); several instances share one database",
            ["instance"], namespace=ns, registry=r,
        )
        self.leases_held = Gauge(
            "leases_held", "Leases this instance holds, by kind (kis, telegram)",
            ["kind"], namespace=ns, registry=r,
        )

    def set_instance(self, name: str) -> None:
        self.instance.clear()
        self.instance.labels(name).set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)

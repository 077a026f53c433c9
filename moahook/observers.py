"""Adapters from the services' observer hooks to Prometheus metrics."""

from __future__ import annotations

from collections.abc import Hashable

from webhook_server.metrics import Metrics


class WatcherMetrics:
    """Fill notices counted; fill-notice connections gauged by their current state."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._status: dict[Hashable, str] = {}

    def notice(self, kind: str) -> None:
        self._metrics.fill_notices.inc()

    def state(self, connection: Hashable, status: str) -> None:
        old = self._status.get(connection)
        if old == status:
            return
        gauge = self._metrics.websocket_connections
        if old is not None:
            gauge.labels(state=old).dec()
        if status == "stopped":
            self._status.pop(connection, None)
            return
        self._status[connection] = status
        gauge.labels(state=status).inc()

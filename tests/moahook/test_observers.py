from moahook.observers import WatcherMetrics
from webhook_server.metrics import Metrics


def _gauge(metrics: Metrics, state: str) -> float:
    value = metrics.registry.get_sample_value("moahook_websocket_connections", {"state": state})
    return value or 0.0


def test_connections_are_gauged_by_current_state() -> None:
    metrics = Metrics()
    observer = WatcherMetrics(metrics)
    observer.state(1, "connecting")
    observer.state(2, "connecting")
    observer.state(1, "ready")
    observer.state(1, "ready")
    assert _gauge(metrics, "connecting") == 1
    assert _gauge(metrics, "ready") == 1
    observer.state(1, "stopped")
    observer.state(2, "failed")
    assert _gauge(metrics, "ready") == 0
    assert _gauge(metrics, "connecting") == 0
    assert _gauge(metrics, "failed") == 1


def test_fill_notices_are_counted() -> None:
    metrics = Metrics()
    observer = WatcherMetrics(metrics)
    observer.notice("filled")
    observer.notice("accepted")
    assert metrics.registry.get_sample_value("moahook_fill_notices_total") == 2

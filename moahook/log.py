"""Logging set-up: ISO 8601 times with their zone, text or JSON lines, the user and alert
ids of an alert's path on each line, and a filter that keeps secrets out of every record.

The standard library's logging, not structlog: every library here (aiohttp, aiogram,
SQLAlchemy, httpx) logs through it, so one handler with two filters and a formatter
covers all of their lines too, with no second pipeline and no new dependency.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final, Literal, TextIO

from webhook_server.log_context import current as current_alert

# Shapes of secrets that may reach a log line through a library's own message.
_PATTERNS = (
    # Telegram bot tokens, also inside Bot API URLs.
    re.compile(r"(?<![0-9])[0-9]{5,}:[A-Za-z0-9_-]{30,}"),
    # Webhook tokens in request paths.
    re.compile(r"(?<=/hook/)[A-Za-z0-9_-]{8,}"),
    # KIS credentials in JSON bodies, headers or query strings.
    re.compile(
        r"(?i)((?:appsecret|secretkey|access_token|approval_key|authorization|token)"
        r"[\"']?\s*[:=]\s*[\"']?(?:Bearer )?)[A-Za-z0-9._~+/=-]{8,}"
    ),
    # The fill-notice subscription's AES key and iv (JSON "key"/"iv", possibly cut short).
    re.compile(r'(?i)("(?:key|iv)"\s*:\s*")[^"]*'),
    # aiogram's ClientDecodeError ends with the raw Bot API answer (users' messages:
    # App Secrets, 2FA codes); everything from there on goes.
    re.compile(r"(?s)(\nContent: ).*"),
    # pydantic validation errors quote the offending input.
    re.compile(r"(input_value=)[^\n]*?(?=, input_type=)"),
)
_REPLACEMENT = "****"


def _substitute(match: re.Match[str]) -> str:
    prefix = match.group(1) if match.re.groups else ""
    return prefix + _REPLACEMENT


class SecretRegistry:
    """Exact secret values known at run time (keys loaded from storage, tokens issued)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: str | None) -> None:
        with self._lock:
            for value in values:
                if value and len(value) >= 6:
                    self._values.add(value)

    def discard(self, value: str) -> None:
        with self._lock:
            self._values.discard(value)

    def values(self) -> Iterable[str]:
        with self._lock:
            return sorted(self._values, key=len, reverse=True)


def redact(text: str, registry: SecretRegistry | None = None) -> str:
    if registry is not None:
        for value in registry.values():
            if value in text:
                text = text.replace(value, _REPLACEMENT)
    for pattern in _PATTERNS:
        text = pattern.sub(_substitute, text)
    return text


class RedactingFilter(logging.Filter):
    """Renders the record once, redacted, so arguments cannot smuggle secrets out."""

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        super().__init__()
        self.registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact(message, self.registry)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.registry)
        return True


class AlertContextFilter(logging.Filter):
    """Adds `user_id` and `alert_id` (None outside an alert's path) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_alert()
        record.user_id = ids.get("user_id")
        record.alert_id = ids.get("alert_id")
        return True


def iso_time(record: logging.LogRecord) -> str:
    """`2026-05-11T00:01:02.345Z`: UTC, milliseconds, the zone spelled out."""
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """`<ISO time> LEVEL [instance] logger: message [user=… alert=…]`, traceback lines
    after it; the instance is named when several may share one log stream."""

    def __init__(self, fmt: str, instance: str | None = None) -> None:
        super().__init__(fmt)
        self._instance = f"[{instance}] " if instance else ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return iso_time(record)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        if self._instance:
            time_level, _, rest = line.partition(f" {record.levelname} ")
            line = f"{time_level} {record.levelname} {self._instance}{rest}"
        ids = _ids(record)
        if ids:
            line += " [" + " ".join(f"{k.removesuffix('_id')}={v}" for k, v in ids.items()) + "]"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log shippers: time, level, instance (when named),
    logger, message, the ids when known, and the (redacted) traceback as `exc`."""

    def __init__(self, instance: str | None = None) -> None:
        super().__init__()
        self._instance = {"instance": instance} if instance else {}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": iso_time(record),
            "level": record.levelname,
            **self._instance,
            "logger": record.name,
            "message": record.getMessage(),
            **_ids(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def _ids(record: logging.LogRecord) -> dict[str, int]:
    ids = {name: getattr(record, name, None) for name in ("user_id", "alert_id")}
    return {name: value for name, value in ids.items() if isinstance(value, int)}


LogFormat = Literal["text", "json"]
_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def make_handler(
    registry: SecretRegistry | None = None,
    log_format: LogFormat = "text",
    stream: TextIO | None = None,
    instance: str | None = None,
) -> logging.Handler:
    """A stream handler (stderr by default) with the redacting and id filters."""
    handler: logging.StreamHandler[TextIO] = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(instance) if log_format == "json" else TextFormatter(_TEXT_FORMAT, instance)
    )
    handler.setFormatter(formatter)
    handler.addFilter(AlertContextFilter())
    handler.addFilter(RedactingFilter(registry))
    return handler


def setup_logging(
    level: str | int = "INFO",
    registry: SecretRegistry | None = None,
    log_format: LogFormat = "text",
    instance: str | None = None,
) -> None:
    """One stderr handler on the root logger; the redacting filter sits on the handler."""
    handler = make_handler(registry, log_format, instance=instance)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO; keep it at WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)

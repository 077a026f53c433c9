"""Logging set-up with a filter that keeps secrets out of every record."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable

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


def setup_logging(level: str | int = "INFO", registry: SecretRegistry | None = None) -> None:
    """One stderr handler on the root logger; the redacting filter sits on the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(RedactingFilter(registry))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO; keep it at WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)

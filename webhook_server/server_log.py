"""aiohttp's own server log, made safe to expose to the internet.

aiohttp logs every malformed request (a bad request line, a broken header) with a full
traceback at ERROR: anyone could flood the log. `ClientErrorFilter` turns those into
one WARNING line each, at most `burst` lines per `window` seconds, counting what it
drops; real errors (a bug in a handler) keep their traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER: Final = "webhook_server.http"


class ClientErrorFilter(logging.Filter):
    def __init__(
        self, *, burst: int = 10, window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._burst = burst
        self._window = window
        self._clock = clock
        self._window_start = -window
        self._lines = 0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        now = self._clock()
        if now - self._window_start >= self._window:
            self._window_start, self._lines = now, 0
        if self._lines >= self._burst:
            self.suppressed += 1
            return False
        self._lines += 1
        detail = (exc.message or "").strip().splitlines()
        first = detail[0][:80] if detail else ""
        dropped = f" ({self.suppressed} more dropped before)" if self.suppressed else ""
        self.suppressed = 0
        record.msg = f"malformed request ({exc.code} {type(exc).__name__}: {first}){dropped}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def server_logger() -> logging.Logger:
    """The logger to hand to aiohttp's server (`logger=`), with the filter on it once."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
        logger.addFilter(ClientErrorFilter())
    return logger

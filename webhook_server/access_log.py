"""An aiohttp access logger that never writes a webhook token."""

from __future__ import annotations

import re
from typing import Final

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

_HOOK_TOKEN: Final = re.compile(r"(/hook/)[^/?#]*", re.IGNORECASE)


def mask_path(path: str) -> str:
    """`/hook/<token>` → `/hook/****`."""
    return _HOOK_TOKEN.sub(r"\1****", path)


class MaskingAccessLogger(AbstractAccessLogger):
    """Pass as `access_log_class=` to `web.AppRunner`/`TestServer`: path only, token masked,
    no query string, no headers."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fms',
            request.remote or "-",
            request.method,
            mask_path(request.path),
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time * 1000,
        )

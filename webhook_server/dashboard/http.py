"""Request and response plumbing of the dashboard's JSON API.

Every answer is JSON with `Cache-Control: no-store`; a refusal is
`{"error": "<what is wrong>", "code": "<machine-readable>", …}` so the page can say it
in the user's language.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web

from webhook_server.client_ip import IPNetwork, client_address

MAX_JSON_BYTES: Final = 8 * 1024
JSON_TYPES: Final = ("application/json",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Answered as `{"error": message, "code": code, **extra}` with `status`."""

    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def answer(status: int, payload: Mapping[str, object]) -> web.Response:
    response = web.Response(
        status=status,
        body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(),
        content_type="application/json",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def refusal(error: ApiError) -> web.Response:
    response = answer(error.status, {"error": error.message, "code": error.code, **error.extra})
    retry = error.extra.get("retry_after")
    if error.status == 429 and isinstance(retry, int):
        response.headers["Retry-After"] = str(retry)
    return response


def guarded(handler: Handler) -> Handler:
    """Turns `ApiError` into its JSON answer."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return refusal(error)

    return run


async def read_json(request: web.Request) -> dict[str, object]:
    """The body as a JSON object. Sent as `application/json` (or with no type at all);
    the types an HTML form can send are refused, so no form on another site posts here."""
    declared = "Content-Type" in request.headers
    if declared and request.content_type not in JSON_TYPES:
        raise ApiError(415, "bad_request", "send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise ApiError(413, "bad_request", f"body too large (at most {MAX_JSON_BYTES} bytes)")
    raw = await request.content.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise ApiError(413, "bad_request", f"body too large (at most {MAX_JSON_BYTES} bytes)")
    try:
        body = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


def text_field(
    body: Mapping[str, object], name: str, *, required: bool = True, max_chars: int = 1024
) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, "bad_field", f"{name}: a string is required", field=name)
    value = value.strip()
    if required and not value:
        raise ApiError(400, "bad_field", f"{name}: must not be empty", field=name)
    if len(value) > max_chars:
        raise ApiError(
            400, "bad_field", f"{name}: too long (at most {max_chars} characters)", field=name
        )
    return value


def client_ip(request: web.Request, trusted_proxies: tuple[IPNetwork, ...]) -> str:
    address = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), trusted_proxies
    )
    return "unknown" if address is None else str(address)

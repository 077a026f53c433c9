"""Reading KIS answers: JSON shapes, refusals, transport-error classes. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

import httpx

from kis.errors import KisApiError, KisServerError, api_error

JsonObject = dict[str, object]

# The request cannot have left the client: safe to say nothing reached KIS.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)


def json_object(response: httpx.Response) -> JsonObject | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        data: object = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return as_object(data)


def as_object(value: object) -> JsonObject | None:
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return None


def objects(value: object) -> list[JsonObject]:
    """A list of JSON objects; a single object becomes a one-item list."""
    if isinstance(value, list):
        return [obj for obj in (as_object(item) for item in value) if obj is not None]
    single = as_object(value)
    return [single] if single is not None else []


def text(obj: JsonObject, key: str) -> str:
    """A field as a stripped string, looked up as given, then upper- and lower-case."""
    for candidate in (key, key.upper(), key.lower()):
        value = obj.get(candidate)
        if value is not None:
            return str(value).strip()
    return ""


def integer(obj: JsonObject, key: str) -> int:
    """KIS sends numbers as strings ("71000", "71000.0000", ""); empty means 0."""
    return int(decimal(obj, key))


def decimal(obj: JsonObject, key: str) -> Decimal:
    raw = text(obj, key).replace(",", "")
    if not raw:
        return Decimal(0)
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"field {key} is not a number") from None


def scrub(message: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value and value in message:
            message = message.replace(value, "****")
    return message


def refusal(
    response: httpx.Response,
    body: JsonObject | None,
    *,
    tr_id: str | None,
    oauth: bool = False,
    secrets: Iterable[str] = (),
) -> KisApiError | None:
    """The refusal in a KIS answer, or None when it is a success.

    Two shapes: `rt_cd`/`msg_cd`/`msg1` (every /uapi call) and `error_code`/
    `error_description` (the oauth endpoints). A body with neither counts as success
    on a 2xx and as a server error otherwise.
    """
    status = response.status_code
    if body is not None and "rt_cd" in body:
        rt_cd = text(body, "rt_cd")
        if rt_cd == "0":
            return None
        return api_error(
            rt_cd=rt_cd,
            msg_cd=text(body, "msg_cd"),
            msg1=scrub(text(body, "msg1"), secrets),
            tr_id=tr_id,
            http_status=status,
            oauth=oauth,
        )
    if body is not None and "error_code" in body:
        return api_error(
            rt_cd="",
            msg_cd=text(body, "error_code"),
            msg1=scrub(text(body, "error_description"), secrets),
            tr_id=tr_id,
            http_status=status,
            oauth=oauth,
        )
    if 200 <= status < 300 and body is not None:
        return None
    message = f"HTTP {status} without a KIS answer"
    if status < 300 or status >= 500:
        return KisServerError(rt_cd="", msg_cd="", msg1=message, tr_id=tr_id, http_status=status)
    return KisApiError(rt_cd="", msg_cd="", msg1=message, tr_id=tr_id, http_status=status)

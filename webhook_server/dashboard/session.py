"""The session cookie and who is asking.

The cookie carries the session id only: `HttpOnly`, `SameSite=Strict`, `Path=/`,
12 hours, `Secure` (and the `__Host-` name prefix) when the public URL is https.
State-changing requests also need the CSRF token in the `X-CSRF-Token` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from storage.records import UserRecord
from storage.repositories.websessions import ActiveSession, NewSession
from webhook_server.dashboard.http import ApiError
from webhook_server.dashboard.ports import DashboardDeps

PLAIN_COOKIE: Final = "moahook_session"
SECURE_COOKIE: Final = "__Host-moahook_session"
CSRF_HEADER: Final = "X-CSRF-Token"


def cookie_name(deps: DashboardDeps) -> str:
    return SECURE_COOKIE if deps.secure_cookies else PLAIN_COOKIE


def set_cookie(response: web.StreamResponse, deps: DashboardDeps, new: NewSession) -> None:
    response.set_cookie(
        cookie_name(deps),
        new.session_id,
        max_age=int(deps.storage.web_sessions.ttl.total_seconds()),
        path="/",
        secure=deps.secure_cookies,
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(response: web.StreamResponse, deps: DashboardDeps) -> None:
    response.del_cookie(
        cookie_name(deps), path="/", secure=deps.secure_cookies, httponly=True,
        samesite="Strict",
    )


def session_id(request: web.Request, deps: DashboardDeps) -> str | None:
    return request.cookies.get(cookie_name(deps))


@dataclass(frozen=True, slots=True)
class Caller:
    session: ActiveSession
    user: UserRecord


async def caller(request: web.Request, deps: DashboardDeps, *, csrf: bool) -> Caller:
    """The signed-in user, or 401 (no or ended session) / 403 (CSRF token missing or wrong)."""
    session = await deps.storage.web_sessions.resolve(session_id(request, deps))
    if session is None:
        raise ApiError(401, "no_session", "not signed in (or the session has ended)")
    if csrf and not session.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise ApiError(403, "csrf", f"missing or wrong {CSRF_HEADER} header")
    user = await deps.storage.users.get(session.user_id)
    if user is None:  # the user row went away: the cascade removed the session too
        raise ApiError(401, "no_session", "not signed in (or the session has ended)")
    return Caller(session, user)

"""Signing in and out (SPEC 14).

- Inside Telegram: `POST /app/api/session {"init_data": …}` — Telegram's signed initData.
- In a plain browser: `POST /app/api/signin/code {"user": "<username or id>"}` makes the
  bot send a code to that chat; `POST /app/api/signin {"user", "code"}` opens the session.
  Both answer the same whether or not the user exists, so they reveal nobody.
- `GET /app/api/session`: who is signed in, with the CSRF token again after a reload;
  `DELETE` signs out.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from aiohttp import web

from storage.records import UserRecord
from webhook_server.dashboard.http import ApiError, answer, client_ip, read_json, text_field
from webhook_server.dashboard.i18n import DEFAULT_LANG, parse_lang
from webhook_server.dashboard.initdata import InitDataError, check_init_data
from webhook_server.dashboard.limits import spend
from webhook_server.dashboard.ports import DashboardDeps
from webhook_server.dashboard.second_factor import PURPOSE_SIGNIN, is_code, request_second_factor
from webhook_server.dashboard.session import caller, clear_cookie, session_id, set_cookie
from webhook_server.dashboard.views import user_json

log = logging.getLogger(__name__)

STALE_BUCKETS = timedelta(days=1)
SIGNIN_FAILED = "the code is wrong, expired or void: ask for a new one if needed"


def user_lang(user: UserRecord) -> str:
    return parse_lang(user.language) or DEFAULT_LANG


class Auth:
    def __init__(self, deps: DashboardDeps) -> None:
        self._deps = deps

    def __repr__(self) -> str:
        return "Auth()"

    async def _ip_attempt(self, request: web.Request) -> None:
        deps = self._deps
        ip = client_ip(request, deps.trusted_proxies)
        await spend(deps.storage.rate_buckets, "signin-ip", ip, deps.limits.per_ip)

    async def _opened(self, user: UserRecord, via: str) -> web.Response:
        storage = self._deps.storage
        new = await storage.web_sessions.create(user.id, via)
        await storage.rate_buckets.sweep(STALE_BUCKETS)
        await storage.audit.record(user.id, "dashboard.signed_in", {"via": via})
        response = answer(200, _session_json(user, new.csrf_token))
        set_cookie(response, self._deps, new)
        return response

    async def telegram(self, request: web.Request) -> web.StreamResponse:
        """Refused initData counts against the client IP; accepted initData (signed by
        Telegram, not guessable) against the user only, so users behind one carrier NAT
        do not lock each other out."""
        deps = self._deps
        body = await read_json(request)
        raw = body.get("init_data")
        if not isinstance(raw, str):
            raise ApiError(400, "bad_field", "init_data: a string is required", field="init_data")
        try:
            who = check_init_data(
                deps.bot_token.reveal(), raw, now=deps.clock(), max_age=deps.init_data_max_age
            )
        except InitDataError as exc:
            ip = client_ip(request, deps.trusted_proxies)
            await spend(deps.storage.rate_buckets, "initdata-ip", ip, deps.limits.per_ip)
            raise ApiError(401, "init_data", str(exc)) from None
        await spend(
            deps.storage.rate_buckets, "initdata-user", str(who.id), deps.limits.telegram_per_user
        )
        # A Mini App is opened from the user's private chat with the bot: chat id = user id.
        user = await deps.storage.users.get_or_create(
            who.id, who.id, parse_lang(who.language_code) or DEFAULT_LANG, username=who.username
        )
        return await self._opened(user, "telegram")

    async def _named_user(self, body: dict[str, object]) -> tuple[str, UserRecord | None]:
        name = text_field(body, "user", max_chars=64).removeprefix("@")
        users = self._deps.storage.users
        if name.isdigit():
            return name, await users.by_telegram_id(int(name))
        return name.lower(), await users.by_username(name)

    async def send_code(self, request: web.Request) -> web.StreamResponse:
        deps = self._deps
        await self._ip_attempt(request)
        body = await read_json(request)
        name, user = await self._named_user(body)
        await spend(deps.storage.rate_buckets, "signin-code", name, deps.limits.per_user)
        if user is not None:
            # Not delivered or not: the answer must not tell who exists.
            with contextlib.suppress(ApiError):
                await request_second_factor(deps, user, PURPOSE_SIGNIN)
        return answer(202, {"status": "sent_if_known"})

    async def verify_code(self, request: web.Request) -> web.StreamResponse:
        deps = self._deps
        await self._ip_attempt(request)
        body = await read_json(request)
        name, user = await self._named_user(body)
        code = text_field(body, "code", max_chars=16)
        await spend(deps.storage.rate_buckets, "signin-user", name, deps.limits.per_user)
        if not is_code(code):
            raise ApiError(400, "bad_field", "code: 6 digits are expected", field="code")
        if user is None:
            raise ApiError(401, "signin_failed", SIGNIN_FAILED)
        result = await deps.storage.two_factor.verify(user.id, PURPOSE_SIGNIN, code)
        if not result.ok:
            raise ApiError(401, "signin_failed", SIGNIN_FAILED)
        return await self._opened(user, "code")

    async def current(self, request: web.Request) -> web.StreamResponse:
        """Who is signed in; `{"status": "signed_out"}` (200: asking is no error) if nobody."""
        try:
            who = await caller(request, self._deps, csrf=False)
        except ApiError:
            return answer(200, {"status": "signed_out"})
        return answer(200, _session_json(who.user, who.session.csrf_token))

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        await caller(request, self._deps, csrf=True)
        sid = session_id(request, self._deps)
        if sid:
            await self._deps.storage.web_sessions.end(sid)
        response = answer(200, {"status": "signed_out"})
        clear_cookie(response, self._deps)
        return response


def _session_json(user: UserRecord, csrf: str) -> dict[str, object]:
    return {"status": "ok", "csrf": csrf, "user": user_json(user, user_lang(user))}


"""The dashboard's test stack: the real composition (`open_services` + `build_app`) on a
loopback port, against the KIS simulator and the Bot API stand-in; initData built as
Telegram builds it; a cookie-keeping API client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.standin import BotApiStandIn, SimUser
from bot.standin.webapp import init_data, web_app_user
from kis.sim import KisSimulator
from moahook.services import Services, build_app, open_services
from moahook.settings import Settings
from webhook_server.app import make_runner
from webhook_server.dashboard import CHECKS_KEY

CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
WAIT_S = 10.0


def make_init_data(
    bot_token: str, user: dict[str, object] | None, *, auth_date: int | None = None
) -> str:
    return init_data(bot_token, user, auth_date=auth_date)


def tg_user(user_id: int, username: str = "trader_kim", lang: str = "ko") -> dict[str, object]:
    return web_app_user(user_id, "지민", username=username, language_code=lang)


@dataclass
class Response:
    status: int
    body: dict[str, object]
    text: str
    headers: dict[str, str]
    set_cookie: list[str]


@dataclass
class Client:
    """One browser's worth of API calls: keeps the session cookie and the CSRF token by
    hand, so what is sent is exactly what a test says (Secure cookies included)."""

    http: aiohttp.ClientSession
    base: str
    cookie: str = ""
    csrf: str = ""
    responses: list[Response] = field(default_factory=list)

    async def call(
        self, method: str, path: str, body: object = None, *, csrf: bool = True,
        cookie: bool = True, headers: dict[str, str] | None = None,
    ) -> Response:
        sent: dict[str, str] = dict(headers or {})
        if cookie and self.cookie:
            sent["Cookie"] = self.cookie
        if csrf and self.csrf:
            sent["X-CSRF-Token"] = self.csrf
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.base + path, data=data, headers=sent) as r:
            text = await r.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = {}
            response = Response(
                r.status, parsed if isinstance(parsed, dict) else {}, text,
                dict(r.headers), r.headers.getall("Set-Cookie", []),
            )
        self.responses.append(response)
        for header in response.set_cookie:
            pair = header.split(";", 1)[0]
            name, _, value = pair.partition("=")
            self.cookie = "" if not value.strip('"') else f"{name}={value}"
        csrf_token = response.body.get("csrf")
        if isinstance(csrf_token, str):
            self.csrf = csrf_token
        return response

    async def sign_in(self, bot_token: str, user_id: int, **user: str) -> Response:
        init = make_init_data(bot_token, tg_user(user_id, **user))
        response = await self.call("POST", "/app/api/session", {"init_data": init})
        assert response.status == 200, response.text
        return response


@dataclass
class Stack:
    sim: KisSimulator
    standin: BotApiStandIn
    services: Services
    base_url: str
    public_url: str
    http: aiohttp.ClientSession
    app: web.Application
    clients: list[Client] = field(default_factory=list)

    async def checks_idle(self) -> None:
        """Until the key checks the dashboard started have ended (bounded)."""
        await asyncio.wait_for(self.app[CHECKS_KEY].wait_idle(), WAIT_S)

    @property
    def bot_token(self) -> str:
        return self.standin.token

    def client(self) -> Client:
        client = Client(self.http, self.base_url)
        self.clients.append(client)
        return client

    def user(self, user_id: int, username: str | None = None) -> SimUser:
        return self.standin.user(user_id, "지민", language_code="ko", username=username)

    async def code_for(self, user: SimUser, after: int, expect: str = "대시보드 인증 코드") -> str:
        message = await user.wait_for_bot_message(expect, WAIT_S, after=after)
        found = CODE.search(message.text)
        assert found is not None, message.text
        return found.group(1)

    def every_response_text(self) -> str:
        parts = []
        for client in self.clients:
            for response in client.responses:
                parts.append(response.text)
                parts.extend(f"{k}: {v}" for k, v in response.headers.items())
        return "\n".join(parts)

    def every_bot_api_request(self) -> str:
        calls = self.standin.calls
        return "\n".join(json.dumps(call.params, ensure_ascii=False) for call in calls)


@contextlib.asynccontextmanager
async def running_stack(tmp_path: Path, *, public_url: str | None = None) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as exit_stack:
        sim = await exit_stack.enter_async_context(KisSimulator())
        standin = await exit_stack.enter_async_context(BotApiStandIn())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        exit_stack.callback(sock.close)
        sock.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = Settings.from_mapping({
            **sim.env_vars(),
            "MOAHOOK_BOT_TOKEN": standin.token,
            "MOAHOOK_TELEGRAM_API_URL": standin.base_url,
            "MOAHOOK_PUBLIC_URL": public_url or base_url,
            "MOAHOOK_DATA_DIR": str(tmp_path / "data"),
            "MOAHOOK_MARKET_HOURS": "off",
        })
        services = await open_services(settings)
        exit_stack.push_async_callback(services.close)
        app, bot_started = build_app(services)
        runner = make_runner(app, shutdown_timeout=2.0, freeze_gc=False)
        await runner.setup()
        exit_stack.push_async_callback(runner.cleanup)
        await web.SockSite(runner, sock).start()
        await asyncio.wait_for(bot_started.wait(), WAIT_S)
        http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        exit_stack.push_async_callback(http.close)
        yield Stack(sim, standin, services, base_url, public_url or base_url, http, app)

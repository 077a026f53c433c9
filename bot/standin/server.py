"""A local stand-in for the Telegram Bot API, served over loopback for the demo and tests.

The real aiogram bot talks to it through `AiohttpSession(api=TelegramAPIServer.from_base(
standin.base_url))`. Simulated users (`standin.user(...)`) send messages and press buttons;
updates reach the bot through long polling (`getUpdates`) or, after `setWebhook`, as POSTs
to the bot's webhook with the secret-token header.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import aiohttp
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from bot.standin.chat import (
    ApiError,
    Chat,
    JsonObject,
    Keyboard,
    StoredMessage,
    bad_request,
    check_web_app,
    command_entities,
    format_text,
    parse_reply_markup,
)
from bot.standin.model import ApiCall, WebhookDelivery
from bot.standin.user import SimUser

log = logging.getLogger(__name__)

_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_WEBHOOK_RETRY_DELAYS: Final = (0.05, 0.2, 0.5, 1.0)
_WEBHOOK_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
_MAX_UPDATES: Final = 100


@dataclass
class _Failure:
    code: int
    retry_after: int | None
    description: str | None


@dataclass
class _Webhook:
    url: str
    secret_token: str | None


class BotApiStandIn:
    """An aiohttp server on 127.0.0.1 (port 0) answering `/bot{token}/{method}`."""

    def __init__(
        self,
        token: str | None = None,
        *,
        bot_username: str = "moahook_bot",
        bot_first_name: str = "moahook",
        per_chat_limit: tuple[int, float] | None = None,
        port: int = 0,
    ) -> None:
        """`per_chat_limit=(n, seconds)` answers 429 to the n+1-th sendMessage to one chat
        within `seconds`, as Telegram does; None (default) only records the timestamps.
        `port` 0 takes any free port."""
        self._port = port
        self._token = token or _new_token()
        bot_id = int(self._token.partition(":")[0])
        self._bot_user: JsonObject = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._per_chat_limit = per_chat_limit
        self._changed = asyncio.Condition()
        self._stopping = False
        self._polls_waiting = 0
        self._poll_generation = 0
        # getUpdates answered 409 because another poller came (Telegram: two bots polling).
        self.conflicts = 0
        self._seq = 0
        self._next_update_id = 1
        self._pending: list[JsonObject] = []
        self._chats: dict[int, Chat] = {}
        self._users: dict[int, SimUser] = {}
        self._callbacks: dict[str, int] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._commands: dict[tuple[str, str], list[JsonObject]] = {}
        self._send_times: dict[int, list[float]] = {}
        self._webhook: _Webhook | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None
        self._base_url: str | None = None
        self.calls: list[ApiCall] = []
        """Every authorised request, in arrival order."""
        self.webhook_deliveries: list[WebhookDelivery] = []
        """Every POST of an update to the bot's webhook, in order."""
        self.menu_buttons: dict[str, JsonObject] = {}
        """setChatMenuButton by chat id ("" = the default for every private chat)."""
        self.answered_callbacks: dict[str, JsonObject] = {}
        """answerCallbackQuery calls by callback query id: their text/show_alert parameters."""

    def __repr__(self) -> str:
        return f"BotApiStandIn(base_url={self._base_url!r}, bot=@{self._bot_user['username']})"

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The only bot token this server accepts."""
        return self._token

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` — for MOAHOOK_TELEGRAM_API_URL / TelegramAPIServer.from_base."""
        if self._base_url is None:
            raise RuntimeError("the Bot API stand-in is not started")
        return self._base_url

    def session(self) -> AiohttpSession:
        """An aiogram session pointed at this server: `Bot(standin.token, session=...)`."""
        return AiohttpSession(api=TelegramAPIServer.from_base(self.base_url))

    @property
    def bot_id(self) -> int:
        bot_id = self._bot_user["id"]
        assert isinstance(bot_id, int)
        return bot_id

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        # No access log: request paths carry the bot token.
        # A poller that hangs up stops polling (as at Telegram): its handler is cancelled.
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=2.0, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port)
        await site.start()
        port = int(runner.addresses[0][1])
        self._runner = runner
        self._base_url = f"http://127.0.0.1:{port}"
        self._stopping = False
        self._client = aiohttp.ClientSession(timeout=_WEBHOOK_TIMEOUT)
        self._worker = asyncio.create_task(self._deliver_webhooks(), name="standin-webhook")

    async def stop(self) -> None:
        """Wakes every pending getUpdates (they answer at once) and closes the server."""
        if self._runner is None:
            return
        async with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()
        self._runner = self._client = self._worker = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what tests drive and inspect ----------------------------------------------------

    def user(
        self, user_id: int, first_name: str, language_code: str = "ko",
        username: str | None = None,
    ) -> SimUser:
        """The simulated user (and their private chat); the same handle for the same id."""
        if user_id not in self._users:
            self._chats[user_id] = Chat(user_id, first_name, language_code, username=username)
            self._users[user_id] = SimUser(self, user_id)
        return self._users[user_id]

    def fail_next(
        self,
        method: str,
        count: int = 1,
        error_code: int = 429,
        retry_after: int | None = 1,
        description: str | None = None,
    ) -> None:
        """The next `count` calls of `method` answer with an error instead of acting.

        429 answers carry Telegram's shape ("Too Many Requests: retry after N",
        parameters.retry_after); other codes a generic description unless one is given.
        """
        failure = _Failure(error_code, retry_after if error_code == 429 else None, description)
        self._failures.setdefault(method.lower(), deque()).extend([failure] * count)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def send_times(self, chat_id: int) -> list[float]:
        """time.monotonic() of every successful sendMessage to the chat."""
        return list(self._send_times.get(chat_id, []))

    def commands(self, language_code: str = "", scope: str = "default") -> list[JsonObject]:
        """What setMyCommands registered for this language and scope type."""
        return list(self._commands.get((scope, language_code), []))

    @property
    def webhook_url(self) -> str | None:
        return None if self._webhook is None else self._webhook.url

    @property
    def pending_update_count(self) -> int:
        return len(self._pending)

    @property
    def long_polls_waiting(self) -> int:
        """getUpdates requests now waiting for an update (the bot is polling)."""
        return self._polls_waiting

    def mark(self) -> int:
        """A point in the chats' history; see SimUser.wait_for_bot_message(after=...)."""
        return self._seq

    # -- state changes shared with SimUser -----------------------------------------------

    def _chat(self, chat_id: int) -> Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _queue_update(self, kind: str, payload: JsonObject) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._pending.append({"update_id": update_id, kind: payload})
        return update_id

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(
        self,
        ready: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - a bound for tests, part of this helper's API
    ) -> None:
        """Waits (on the stand-in's change notifications, no polling) until `ready()` holds,
        e.g. `lambda: len(standin.calls_to("sendMessage")) == 2`; TimeoutError after
        `timeout` seconds. Re-checked after every request, update and delivery."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), timeout)

    # -- what simulated users do (SimUser delegates here) ---------------------------------

    async def _user_sends(self, user_id: int, text: str) -> int:
        chat = self._chat(user_id)
        message = chat.add(
            StoredMessage(
                id=chat.allocate_id(),
                sender="user",
                text=text,
                date=int(time.time()),
                seq=self._next_seq(),
                entities=command_entities(text),
            )
        )
        self._queue_update("message", chat.message_json(message, self._bot_user))
        await self._notify()
        return message.id

    async def _user_presses(self, user_id: int, label_or_data: str) -> str:
        chat = self._chat(user_id)
        for message in reversed(chat.entries):
            if message.sender != "bot" or message.deleted or message.kind != "text":
                continue
            button = message.find_button(label_or_data)
            if button is None:
                continue
            query_id = secrets.token_hex(8)
            self._callbacks[query_id] = message.id
            query: JsonObject = {
                "id": query_id,
                "from": chat.user_json(),
                "message": chat.message_json(message, self._bot_user),
                "chat_instance": str(chat.user_id),
                "data": button.get("callback_data"),
            }
            chat.add(
                StoredMessage(
                    id=message.id,
                    sender="user",
                    text=str(button.get("text", "")),
                    date=int(time.time()),
                    seq=self._next_seq(),
                    kind="press",
                )
            )
            self._queue_update("callback_query", query)
            await self._notify()
            return query_id
        raise LookupError(f"no bot message has a button {label_or_data!r}")

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.match_info["token"].encode(), self._token.encode()):
            return _json(ApiError(401, "Unauthorized").body(), 401)
        method = request.match_info["method"]
        params = await _read_params(request)
        arrived = time.monotonic()
        try:
            result = await self._dispatch(method, params, arrived)
        except ApiError as error:
            self.calls.append(ApiCall(method, params, arrived, error.code))
            await self._notify()
            return _json(error.body(), error.code)
        self.calls.append(ApiCall(method, params, arrived, 200))
        await self._notify()
        return _json({"ok": True, "result": result}, 200)

    async def _dispatch(self, method: str, params: dict[str, str], now: float) -> object:
        name = method.lower()
        failures = self._failures.get(name)
        if failures:
            failure = failures.popleft()
            raise _failure_error(failure)
        if name == "getupdates":
            return await self._get_updates(params)
        handler = self._methods().get(name)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        return handler(params, now)

    def _methods(self) -> dict[str, Callable[[dict[str, str], float], object]]:
        return {
            "getme": lambda p, t: self._bot_user,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_reply_markup,
            "deletemessage": self._delete_message,
            "deletemessages": self._delete_messages,
            "answercallbackquery": self._answer_callback,
            "sendchataction": self._send_chat_action,
            "setmycommands": self._set_commands,
            "setchatmenubutton": self._set_menu_button,
            "getmycommands": self._get_commands,
            "deletemycommands": self._delete_commands,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._webhook_info,
            "close": lambda p, t: True,
            "logout": lambda p, t: True,
        }

    async def _get_updates(self, params: dict[str, str]) -> object:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _int(params, "offset", 0)
        limit = min(max(_int(params, "limit", _MAX_UPDATES), 1), _MAX_UPDATES)
        timeout = max(_int(params, "timeout", 0), 0)
        async with self._changed:
            if self._polls_waiting:
                # As Telegram does: a second poller ends the waiting one with 409.
                self._poll_generation += 1
                self._changed.notify_all()
            generation = self._poll_generation
            if offset > 0:  # confirms every update before `offset`
                self._pending = [u for u in self._pending if _update_id(u) >= offset]

            def ready() -> bool:
                return (bool(self._pending) or self._stopping or self._webhook is not None
                        or self._poll_generation != generation)

            if timeout and not ready():
                self._polls_waiting += 1
                self._changed.notify_all()
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait_for(ready), timeout)
                finally:
                    self._polls_waiting -= 1
            if self._poll_generation != generation:
                self.conflicts += 1
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
            if self._webhook is not None or self._stopping:
                return []
            return self._pending[:limit]

    def _send_message(self, params: dict[str, str], now: float) -> object:
        chat = self._chat(_int(params, "chat_id"))
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        text, entities = format_text(
            params.get("text"), params.get("parse_mode"), params.get("entities")
        )
        keyboard = parse_reply_markup(params.get("reply_markup"))
        self._check_chat_rate(chat.user_id, now)
        message = chat.add(
            StoredMessage(
                id=chat.allocate_id(),
                sender="bot",
                text=text,
                date=int(time.time()),
                seq=self._next_seq(),
                entities=entities,
                keyboard=keyboard,
            )
        )
        self._send_times.setdefault(chat.user_id, []).append(now)
        return chat.message_json(message, self._bot_user)

    def _send_photo(self, params: dict[str, str], now: float) -> object:
        """A photo uploaded with the request (`attach://name` → the file part `name`)."""
        chat = self._chat(_int(params, "chat_id"))
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        reference = params.get("photo", "")
        raw = params.get(reference.removeprefix("attach://"), "")
        if not raw.startswith(_FILE_PREFIX):
            raise bad_request("photo must be uploaded with the request")
        self._check_chat_rate(chat.user_id, now)
        message = chat.add(
            StoredMessage(
                id=chat.allocate_id(), sender="bot", text=params.get("caption", ""),
                date=int(time.time()), seq=self._next_seq(),
                photo=base64.b64decode(raw.removeprefix(_FILE_PREFIX)),
            )
        )
        self._send_times.setdefault(chat.user_id, []).append(now)
        return chat.message_json(message, self._bot_user)

    def _check_chat_rate(self, chat_id: int, now: float) -> None:
        if self._per_chat_limit is None:
            return
        most, window = self._per_chat_limit
        recent = [t for t in self._send_times.get(chat_id, []) if now - t < window]
        if len(recent) >= most:
            wait = math.ceil(window - (now - recent[-most]))
            raise _failure_error(_Failure(429, max(wait, 1), None))

    def _send_chat_action(self, params: dict[str, str], now: float) -> object:
        self._chat(_int(params, "chat_id"))
        return True

    def _bot_message(self, params: dict[str, str], action: str) -> tuple[Chat, StoredMessage]:
        if "inline_message_id" in params:
            raise bad_request("inline messages are not supported by the stand-in")
        chat = self._chat(_int(params, "chat_id"))
        message = chat.message(_int(params, "message_id"))
        if message is None:
            raise bad_request(f"message to {action} not found")
        if message.sender != "bot":
            raise bad_request("message can't be edited")
        return chat, message

    def _edit_message_text(self, params: dict[str, str], now: float) -> object:
        chat, message = self._bot_message(params, "edit")
        text, entities = format_text(
            params.get("text"), params.get("parse_mode"), params.get("entities")
        )
        keyboard = parse_reply_markup(params.get("reply_markup"))
        self._apply_edit(message, text, entities, keyboard)
        return chat.message_json(message, self._bot_user)

    def _edit_reply_markup(self, params: dict[str, str], now: float) -> object:
        chat, message = self._bot_message(params, "edit")
        keyboard = parse_reply_markup(params.get("reply_markup"))
        self._apply_edit(message, message.text, message.entities, keyboard)
        return chat.message_json(message, self._bot_user)

    def _apply_edit(
        self,
        message: StoredMessage,
        text: str,
        entities: list[JsonObject],
        keyboard: Keyboard,
    ) -> None:
        if (text, entities, keyboard.inline) == (
            message.text,
            message.entities,
            message.keyboard.inline,
        ):
            raise bad_request(
                "message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message"
            )
        message.text, message.entities = text, entities
        message.keyboard = Keyboard(inline=keyboard.inline, reply=message.keyboard.reply)
        message.edited = True
        message.seq = self._next_seq()

    def _delete_message(self, params: dict[str, str], now: float) -> object:
        chat = self._chat(_int(params, "chat_id"))
        message = chat.message(_int(params, "message_id"))
        if message is None:
            raise bad_request("message to delete not found")
        message.deleted = True
        message.seq = self._next_seq()
        return True

    def _delete_messages(self, params: dict[str, str], now: float) -> object:
        chat = self._chat(_int(params, "chat_id"))
        ids = json.loads(params.get("message_ids") or "[]")
        for message_id in ids if isinstance(ids, list) else []:
            message = chat.message(int(message_id))
            if message is not None:
                message.deleted = True
                message.seq = self._next_seq()
        return True

    def _answer_callback(self, params: dict[str, str], now: float) -> object:
        query_id = params.get("callback_query_id", "")
        if query_id not in self._callbacks or query_id in self.answered_callbacks:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        answer: JsonObject = {k: v for k, v in params.items() if k != "callback_query_id"}
        self.answered_callbacks[query_id] = answer
        return True

    def _set_commands(self, params: dict[str, str], now: float) -> object:
        commands = json.loads(params.get("commands") or "[]")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        key = (_scope_type(params), params.get("language_code", ""))
        self._commands[key] = [c for c in commands if isinstance(c, dict)]
        return True

    def _set_menu_button(self, params: dict[str, str], now: float) -> object:
        raw = params.get("menu_button")
        button = json.loads(raw) if raw else {"type": "default"}
        if not isinstance(button, dict):
            raise bad_request("can't parse menu button JSON object")
        check_web_app(button.get("web_app"))
        self.menu_buttons[params.get("chat_id", "")] = button
        return True

    def _get_commands(self, params: dict[str, str], now: float) -> object:
        return self.commands(params.get("language_code", ""), _scope_type(params))

    def _delete_commands(self, params: dict[str, str], now: float) -> object:
        self._commands.pop((_scope_type(params), params.get("language_code", "")), None)
        return True

    def _set_webhook(self, params: dict[str, str], now: float) -> object:
        url = params.get("url", "")
        secret_token = params.get("secret_token")
        if secret_token is not None and not _SECRET_TOKEN.fullmatch(secret_token):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates") == "true":
            self._pending.clear()
        self._webhook = _Webhook(url, secret_token) if url else None
        self._webhook_error = None
        return True

    def _delete_webhook(self, params: dict[str, str], now: float) -> object:
        if params.get("drop_pending_updates") == "true":
            self._pending.clear()
        self._webhook = None
        return True

    def _webhook_info(self, params: dict[str, str], now: float) -> object:
        info: JsonObject = {
            "url": self.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    # -- webhook delivery ------------------------------------------------------------------

    async def _deliver_webhooks(self) -> None:
        """Pushes queued updates, in order, to the webhook while one is set."""
        failures = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: self._stopping or (self._webhook is not None and bool(self._pending))
                )
                if self._stopping or self._webhook is None:
                    return
                update, hook = self._pending[0], self._webhook
            status = await self._post_update(hook, update)
            self.webhook_deliveries.append(
                WebhookDelivery(_update_id(update), status, time.monotonic())
            )
            if 200 <= status < 300:
                failures = 0
                async with self._changed:
                    if self._pending and self._pending[0] is update:
                        self._pending.pop(0)
                    self._changed.notify_all()
                continue
            self._webhook_error = (int(time.time()), f"Wrong response from the webhook: {status}")
            await self._notify()
            delay = _WEBHOOK_RETRY_DELAYS[min(failures, len(_WEBHOOK_RETRY_DELAYS) - 1)]
            failures += 1
            # Telegram retries a failing webhook; back off, but leave at once on stop().
            with contextlib.suppress(TimeoutError):
                await self.wait_until(lambda: self._stopping, delay)

    async def _post_update(self, hook: _Webhook, update: JsonObject) -> int:
        assert self._client is not None
        headers = {}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self._client.post(hook.url, json=update, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("webhook delivery failed: %s", type(error).__name__)
            return 0


def _new_token() -> str:
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(27)}"


def _failure_error(failure: _Failure) -> ApiError:
    if failure.code == 429:
        retry_after = failure.retry_after or 1
        return ApiError(
            429,
            failure.description or f"Too Many Requests: retry after {retry_after}",
            retry_after=retry_after,
        )
    defaults = {
        400: "Bad Request",
        403: "Forbidden",
        404: "Not Found",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }
    return ApiError(failure.code, failure.description or defaults.get(failure.code, "Error"))


def _json(body: JsonObject, status: int) -> web.Response:
    text = json.dumps(body, ensure_ascii=False)
    return web.Response(text=text, status=status, content_type="application/json")


async def _read_params(request: web.Request) -> dict[str, str]:
    """Form (multipart or urlencoded), JSON body or query string, as strings like aiogram's."""
    params = dict(request.query.items())
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            for key, value in body.items():
                params[str(key)] = value if isinstance(value, str) else json.dumps(value)
        return params
    if request.can_read_body:
        for key, value in (await request.post()).items():
            if isinstance(value, str):
                params[key] = value
            elif isinstance(value, bytes):
                params[key] = value.decode(errors="replace")
            elif isinstance(value, web.FileField):
                params[key] = _FILE_PREFIX + base64.b64encode(value.file.read()).decode()
    return params


_FILE_PREFIX: Final = "file:base64:"


def _int(params: dict[str, str], name: str, default: int | None = None) -> int:
    raw = params.get(name)
    if raw is None:
        if default is None:
            raise bad_request(f"{name} is empty")
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"invalid {name} specified") from None


def _update_id(update: JsonObject) -> int:
    update_id = update["update_id"]
    assert isinstance(update_id, int)
    return update_id


def _scope_type(params: dict[str, str]) -> str:
    raw = params.get("scope")
    scope = json.loads(raw) if raw else {}
    return str(scope.get("type", "default")) if isinstance(scope, dict) else "default"

"""What a signed-in user reads and changes (SPEC 14), each a JSON endpoint.

Reads need the session; every change needs the session and the CSRF token. Changes
that the chat confirms with a 2FA code (keys, real trading, a new webhook URL) are
two calls here: without `code` the bot sends one, with it the change is made.
"""

from __future__ import annotations

from aiohttp import web

from kis.env import Environment
from kis.models import (
    Account,
    AppCredentials,
    looks_like_app_key,
    looks_like_app_secret,
    looks_like_hts_id,
)
from kis.secret import Secret
from storage.records import UserRecord
from webhook_server.dashboard.auth import user_lang
from webhook_server.dashboard.checks import CheckRunner
from webhook_server.dashboard.http import ApiError, answer, read_json, text_field
from webhook_server.dashboard.i18n import LANGS
from webhook_server.dashboard.limits import spend
from webhook_server.dashboard.ports import DashboardDeps
from webhook_server.dashboard.second_factor import (
    PURPOSE_KEYS,
    PURPOSE_REAL,
    PURPOSE_ROTATE,
    check_second_factor,
    request_second_factor,
)
from webhook_server.dashboard.session import caller
from webhook_server.dashboard.views import (
    accounts_json,
    alert_json,
    fill_state_json,
    keyset_json,
    orders_json,
    templates_json,
    user_json,
)

ORDERS_SHOWN = 20
ALERTS_SHOWN = 30
CODE_SENT = {"status": "code_sent"}


def _env(body: dict[str, object]) -> Environment:
    value = body.get("env", "paper")
    if value not in ("paper", "real"):
        raise ApiError(400, "bad_field", "env: 'paper' or 'real' is expected", field="env")
    return Environment(str(value))


def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, "bad_field", f"{name}: {message}", field=name)


def webhook_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/hook/{token}"


class Actions:
    def __init__(self, deps: DashboardDeps, runner: CheckRunner) -> None:
        self._deps = deps
        self._runner = runner

    def __repr__(self) -> str:
        return f"Actions({self._runner!r})"

    # --- reads -----------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.StreamResponse:
        deps = self._deps
        user = (await caller(request, deps, csrf=False)).user
        now = deps.clock()
        # The page manages the default account's keys; every account is listed.
        accounts = await deps.storage.accounts.for_user(user.id)
        default = next(a for a in accounts if a.is_default)
        key_sets = {
            k.environment: k for k in await deps.storage.key_sets.for_account(default.id)
        }
        token = await deps.storage.users.webhook_token(user.id)
        return answer(200, {
            "user": user_json(user, user_lang(user)),
            "account": default.name,
            "accounts": accounts_json(accounts, deps.watch.connection_state),
            "fill": fill_state_json(deps.watch.connection_state(default.id)),
            "keys": {env.value: keyset_json(key_sets.get(env), now) for env in Environment},
            "webhook": {
                "url": webhook_url(deps.public_url, token),
                "templates": templates_json(deps.alert_templates),
            },
            "poll_seconds": deps.poll_seconds,
        })

    async def activity(self, request: web.Request) -> web.StreamResponse:
        storage = self._deps.storage
        user = (await caller(request, self._deps, csrf=False)).user
        orders = await storage.orders.recent(user.id, ORDERS_SHOWN)
        fills = await storage.fills.for_orders(user.id, [o.id for o in orders])
        alerts = await storage.alerts.recent(user.id, ALERTS_SHOWN)
        accounts = await storage.accounts.for_user(user.id)
        names = {a.id: a.name for a in accounts} if len(accounts) > 1 else {}
        return answer(200, {
            "orders": orders_json(orders, fills, names),
            "alerts": [alert_json(a, names) for a in alerts],
        })

    # --- changes ---------------------------------------------------------------------

    async def keys(self, request: web.Request) -> web.StreamResponse:
        deps = self._deps
        user = (await caller(request, deps, csrf=True)).user
        body = await read_json(request)
        env = _env(body)
        app_key = text_field(body, "app_key", max_chars=256)
        if not looks_like_app_key(app_key):
            raise _bad("app_key", "16-128 characters without spaces are expected")
        app_secret = text_field(body, "app_secret", max_chars=1024)
        if not looks_like_app_secret(app_secret):
            raise _bad("app_secret", "32-512 characters without spaces are expected")
        try:
            account = Account.parse(text_field(body, "account", max_chars=32))
        except ValueError as exc:
            raise _bad("account", str(exc)) from None
        hts_id = text_field(body, "hts_id", max_chars=64)
        if not looks_like_hts_id(hts_id):
            raise _bad("hts_id", "2-32 letters, digits, '_', '.' or '-' are expected")
        if self._runner.busy(user.id, env):
            raise ApiError(409, "busy", "a check of these keys is already running")
        code = text_field(body, "code", required=False, max_chars=16)
        if not code:
            await request_second_factor(deps, user, PURPOSE_KEYS)
            return answer(202, CODE_SENT)
        await check_second_factor(deps, user, PURPOSE_KEYS, code)
        secret = Secret(app_secret)
        await deps.storage.key_sets.save(
            user.id, env, app_key=app_key, app_secret=secret, cano=account.cano,
            product_code=account.product_code, hts_id=hts_id,
        )
        await deps.storage.audit.record(
            user.id, "keys.saved", {"environment": env.value, "via": "dashboard"}
        )
        creds = AppCredentials(app_key=app_key, app_secret=secret, env=env)
        self._runner.start(user, creds, account, hts_id)
        return answer(202, {"status": "checking", "env": env.value})

    async def recheck(self, request: web.Request) -> web.StreamResponse:
        """The checks again on the stored keys: nothing but the results changes, so no
        code, but paced per user (KIS issues a token once a minute)."""
        deps = self._deps
        user = (await caller(request, deps, csrf=True)).user
        env = _env(await read_json(request))
        keys = await deps.storage.key_sets.get(user.id, env)
        if keys is None:
            raise ApiError(409, "no_keys", f"no {env.value} keys are registered")
        if self._runner.busy(user.id, env):
            raise ApiError(409, "busy", "a check of these keys is already running")
        await spend(deps.storage.rate_buckets, "recheck", str(user.id), deps.limits.recheck)
        creds = AppCredentials(app_key=keys.app_key.reveal(), app_secret=keys.app_secret, env=env)
        self._runner.start(
            user, creds, Account(keys.cano, keys.product_code), keys.hts_id, keep_live=True
        )
        return answer(202, {"status": "checking", "env": env.value})

    async def mode(self, request: web.Request) -> web.StreamResponse:
        deps = self._deps
        user = (await caller(request, deps, csrf=True)).user
        body = await read_json(request)
        env = _env(body)
        if user.active_environment is env:
            return answer(200, {"status": "ok", "env": env.value})
        if env is Environment.REAL:
            await self._require_real_keys(user)
            code = text_field(body, "code", required=False, max_chars=16)
            if not code:
                await request_second_factor(deps, user, PURPOSE_REAL)
                return answer(202, CODE_SENT)
            await check_second_factor(deps, user, PURPOSE_REAL, code)
            await self._require_real_keys(user)  # the keys may have changed meanwhile
        await deps.storage.users.set_active_environment(user.id, env)
        await deps.storage.audit.record(
            user.id, "mode.switched", {"environment": env.value, "via": "dashboard"}
        )
        await deps.watch.sync(user.id)
        return answer(200, {"status": "ok", "env": env.value})

    async def _require_real_keys(self, user: UserRecord) -> None:
        keys = await self._deps.storage.key_sets.get(user.id, Environment.REAL)
        if keys is None or not keys.validated:
            raise ApiError(
                409, "real_needs_keys", "switching to real needs real keys that passed the checks"
            )

    async def pause(self, request: web.Request) -> web.StreamResponse:
        deps = self._deps
        user = (await caller(request, deps, csrf=True)).user
        paused = (await read_json(request)).get("paused")
        if not isinstance(paused, bool):
            raise _bad("paused", "true or false is expected")
        if user.paused != paused:
            await deps.storage.users.set_paused(user.id, paused)
            await deps.storage.audit.record(
                user.id, "paused" if paused else "resumed", {"via": "dashboard"}
            )
        return answer(200, {"status": "ok", "paused": paused})

    async def rotate(self, request: web.Request) -> web.StreamResponse:
        deps = self._deps
        user = (await caller(request, deps, csrf=True)).user
        code = text_field(await read_json(request), "code", required=False, max_chars=16)
        if not code:
            await request_second_factor(deps, user, PURPOSE_ROTATE)
            return answer(202, CODE_SENT)
        await check_second_factor(deps, user, PURPOSE_ROTATE, code)
        old = await deps.storage.users.webhook_token(user.id)
        await deps.storage.users.rotate_webhook_token(user.id)
        deps.forget_webhook_token(old)
        await deps.storage.audit.record(user.id, "webhook.rotated", {"via": "dashboard"})
        return answer(200, {"status": "ok"})

    async def language(self, request: web.Request) -> web.StreamResponse:
        deps = self._deps
        user = (await caller(request, deps, csrf=True)).user
        lang = text_field(await read_json(request), "lang", max_chars=8)
        if lang not in LANGS:
            raise _bad("lang", "'ko' or 'en' is expected")
        await deps.storage.users.set_language(user.id, lang)
        return answer(200, {"status": "ok", "lang": lang})

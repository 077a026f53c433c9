"""The web dashboard under `/app`: a Telegram Mini App that is also a plain web page
(SPEC section 14).

`setup_dashboard(app, deps)` adds its routes, headers and background work to the
aiohttp app; what it needs from the Telegram side comes in `DashboardDeps`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from webhook_server.dashboard.actions import Actions
from webhook_server.dashboard.auth import Auth
from webhook_server.dashboard.checks import CheckRunner
from webhook_server.dashboard.http import guarded
from webhook_server.dashboard.page import index, setup_templates, static
from webhook_server.dashboard.ports import (
    CodeSender,
    DashboardDeps,
    FillWatch,
    Limit,
    SignInLimits,
)
from webhook_server.dashboard.security import add_security_headers

__all__ = [
    "CHECKS_KEY",
    "CodeSender",
    "DashboardDeps",
    "FillWatch",
    "Limit",
    "SignInLimits",
    "setup_dashboard",
]

CHECKS_KEY: Final = web.AppKey("moahook.dashboard.checks", CheckRunner)


def setup_dashboard(app: web.Application, deps: DashboardDeps) -> CheckRunner:
    """Routes under `/app`; returns the key-check runner (its tasks end with the app)."""
    runner = CheckRunner(deps)
    app[CHECKS_KEY] = runner
    auth = Auth(deps)
    actions = Actions(deps, runner)
    setup_templates(app)
    app.on_response_prepare.append(add_security_headers)

    async def checks_ctx(_app: web.Application) -> AsyncIterator[None]:
        yield
        await runner.close()

    app.cleanup_ctx.append(checks_ctx)
    router = app.router
    router.add_get("/app", index)
    router.add_get("/app/", index)
    router.add_get("/app/static/{name}", static)
    api = "/app/api"
    router.add_post(f"{api}/session", guarded(auth.telegram))
    router.add_get(f"{api}/session", guarded(auth.current))
    router.add_delete(f"{api}/session", guarded(auth.sign_out))
    router.add_post(f"{api}/signin/code", guarded(auth.send_code))
    router.add_post(f"{api}/signin", guarded(auth.verify_code))
    router.add_get(f"{api}/overview", guarded(actions.overview))
    router.add_get(f"{api}/activity", guarded(actions.activity))
    router.add_post(f"{api}/keys", guarded(actions.keys))
    router.add_post(f"{api}/keys/recheck", guarded(actions.recheck))
    router.add_post(f"{api}/mode", guarded(actions.mode))
    router.add_post(f"{api}/pause", guarded(actions.pause))
    router.add_post(f"{api}/webhook/rotate", guarded(actions.rotate))
    router.add_post(f"{api}/lang", guarded(actions.language))
    return runner

"""`moahook serve`: bot, web server and fill-notice watchers in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.reachability import describe, tradingview_problems
from moahook.log import SecretRegistry, setup_logging
from moahook.services import Services, build_app, instance_name, open_services
from moahook.settings import Settings
from storage.crypto import DecryptionError, MasterKeyError
from storage.errors import StorageError
from storage.exclusive import ExclusiveUse
from webhook_server.app import make_runner

log = logging.getLogger("moahook")

# SIGTERM to exit within 15 s: draining gets most of it, the rest is clean-up.
DRAIN_LIMIT_S = 11.0

NO_TOKEN = (
    "moahook serve needs MOAHOOK_BOT_TOKEN: create a bot with @BotFather in Telegram "
    "(/newbot) and put its token in .env. To try moahook without one, run `make demo`."
)


def run_serve(settings: Settings) -> int:
    if settings.bot_token is None:
        print(f"moahook: {NO_TOKEN}", file=sys.stderr)
        return 2
    registry = SecretRegistry()
    setup_logging(
        settings.log_level, registry, settings.log_format, instance=instance_name(settings)
    )
    try:
        return asyncio.run(serve(settings, registry))
    except (MasterKeyError, DecryptionError, StorageError) as exc:
        # Start-up failures an operator fixes: one line, no traceback.
        print(f"moahook: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except Exception:
        # Through the logger, so the redacting filter sees the traceback too.
        log.exception("moahook serve stopped on an unexpected error")
        return 1


@dataclass(frozen=True, slots=True)
class Site:
    runner: web.AppRunner
    site: web.TCPSite
    port: int
    bot_started: asyncio.Event


async def start_site(services: Services, host: str, port: int) -> Site:
    """Start the web app (and with it the bot); port 0 binds any free port."""
    app, bot_started = build_app(services)
    runner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        bound = int(sockets[0].getsockname()[1])
    return Site(runner=runner, site=site, port=bound, bot_started=bot_started)


async def serve(settings: Settings, registry: SecretRegistry) -> int:
    exclusive = ExclusiveUse.for_url(settings.database_url)
    if exclusive is not None:
        exclusive.acquire()  # SQLite: one serving process per database file
    services = await open_services(settings, registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        site = await start_site(services, settings.host, settings.port)
    except OSError as exc:
        await services.close()
        print(f"moahook: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 2
    log.info("moahook serving on %s:%d (webhooks at %s/hook/…)", settings.host, site.port,
             settings.public_url)
    warn_unreachable_public_url(settings)
    refused = services.startup.refused
    stopping = asyncio.ensure_future(stop.wait())
    either: set[asyncio.Future[Any]] = {stopping, refused}
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if refused.done():
            return 2  # said as the last line, after the clean-up below
        log.info("shutting down: draining")
        try:
            async with asyncio.timeout(DRAIN_LIMIT_S):
                await drain(services, site)
        except TimeoutError:
            log.warning("draining took longer than %.0f s; stopping anyway", DRAIN_LIMIT_S)
    finally:
        stopping.cancel()
        await site.runner.cleanup()
        await services.close()
        if refused.done():
            print(f"moahook: {refused.result()}", file=sys.stderr)
    return 0


async def drain(services: Services, site: Site) -> None:
    """SIGTERM (SPEC section 12): `/healthz` says draining, no new connections are
    taken (a proxy retries them on another instance), the leases are handed over at
    once (the work under each stops first), and what is in flight finishes."""
    services.draining.set()
    await site.site.stop()
    await services.coordinator.drain()


def warn_unreachable_public_url(settings: Settings) -> None:
    """Users paste `{MOAHOOK_PUBLIC_URL}/hook/…` into TradingView: say when it cannot work."""
    problems = tradingview_problems(settings.public_url)
    if not problems:
        return
    left = " (the default)" if settings.public_url_is_default else ""
    log.warning(
        "MOAHOOK_PUBLIC_URL is %s%s: TradingView cannot post to it: %s. Users' webhook URLs "
        "will not work until it is set to a public https address (port 443).",
        settings.public_url, left, describe(problems),
    )

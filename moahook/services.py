"""Wiring: every long-lived service built once from the settings, and the web app.

`moahook serve` and `moahook demo` both go through `open_services` + `build_app`, so
the demo runs exactly the stack a user gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
from aiogram import Bot
from aiohttp import web

from bot.confirm_expiry import ExpirySweeper
from bot.dashboard import ChatCodeSender, mini_app_url
from bot.digest import DigestJob
from bot.factory import create_bot_for, create_dispatcher
from bot.formatting import INDICATOR_ALERT, STRATEGY_ALERT, alert_template
from bot.notifier import NoticeWake, Notifier, SendObserver
from bot.runner import attach_bot
from bot.startup import TelegramStartup
from bot.watchers import WatcherSupervisor
from kis.client import KisClient, default_http_client
from kis.keycheck import KeyChecker
from kis.markets import Markets, default_markets
from moahook.log import SecretRegistry
from moahook.observers import WatcherMetrics
from moahook.settings import Settings
from storage.coordination import (
    TELEGRAM_LEASE,
    Coordinator,
    LeaseKeeper,
    SoleInstance,
    default_instance_name,
    kis_lease,
)
from storage.crypto import load_master_keys
from storage.facade import Storage
from storage.signals import USERS_CHANNEL
from webhook_server.app import DRAINING, CleanupContext, create_app
from webhook_server.close_orders import CloseOrders
from webhook_server.dashboard import DashboardDeps, setup_dashboard
from webhook_server.market_hours import MarketClock
from webhook_server.metrics import Metrics
from webhook_server.pipeline import OrderPipeline, kis_metrics_observer
from webhook_server.reservation_results import ReservationResults
from webhook_server.settlement import FillSettler
from webhook_server.store_intake import StorageIntake

log = logging.getLogger(__name__)

@dataclass(slots=True)
class Services:
    settings: Settings
    storage: Storage
    http: httpx.AsyncClient
    kis: KisClient
    metrics: Metrics
    bot: Bot
    notifier: Notifier
    watchers: WatcherSupervisor
    pipeline: OrderPipeline
    intake: StorageIntake
    coordinator: Coordinator
    draining: asyncio.Event
    settler: FillSettler
    startup: TelegramStartup
    markets: Markets

    async def close(self) -> None:
        """Release what `open_services` acquired (the app's cleanup stops the rest)."""
        await self.pipeline.close()
        await self.settler.close()
        await self.intake.close()
        await self.http.aclose()
        await self.storage.close()


async def open_services(settings: Settings, registry: SecretRegistry | None = None) -> Services:
    if settings.bot_token is None:
        raise ValueError("MOAHOOK_BOT_TOKEN is not set")
    if registry is not None:
        registry.add(settings.bot_token.reveal())
    master_keys = load_master_keys(settings.master_keys, settings.master_key_file)
    storage = await Storage.open(settings.database_url, master_keys)
    metrics = Metrics()
    http = default_http_client(settings.kis_timeout)
    try:
        kis = KisClient(
            endpoints=settings.kis,
            http=http,
            token_store=storage.tokens,
            on_response=kis_metrics_observer(metrics),
        )
        bot = create_bot_for(settings.bot_token.reveal(), settings.telegram_api_url)
        startup = TelegramStartup(bot)
        notifier = Notifier(bot, storage, on_send=_telegram_failures(metrics))
        shared = storage.shared
        coordinator = build_coordinator(settings, storage)
        _instance_metrics(metrics, coordinator)
        wake = NoticeWake(notifier, storage.signals if shared else None)
        markets = default_markets(us_slippage=settings.us_market_slippage)
        settler = FillSettler(storage=storage, kis=kis, wake=wake, markets=markets)
        watchers = WatcherSupervisor(
            storage=storage, kis=kis, endpoints=settings.kis, wake=wake,
            observer=WatcherMetrics(metrics), markets=markets, settler=settler,
            coordinator=coordinator, shared=shared,
        )
        pipeline = OrderPipeline(
            storage=storage,
            kis=kis,
            markets=markets,
            market=MarketClock(enforce=settings.market_hours_enforced),
            readiness=watchers,
            metrics=metrics,
            wake=wake,
            settler=settler,
            fill_notice_wait=settings.fill_notice_wait,
            coordinator=coordinator,
            shared=shared,
        )
        intake = StorageIntake(storage, pipeline, instance_id=coordinator.instance_id)
        if shared:
            # Each key's owner connects its users, then carries on with its alerts; when
            # the key goes, the alerts in flight finish before its connections close.
            coordinator.add_work("kis:", watchers)
            coordinator.add_work("kis:", pipeline)
            storage.signals.listen(USERS_CHANNEL, _forget_user(pipeline, intake))
    except BaseException:
        await http.aclose()
        await storage.close()
        raise
    return Services(
        settings=settings,
        storage=storage,
        http=http,
        kis=kis,
        metrics=metrics,
        bot=bot,
        notifier=notifier,
        watchers=watchers,
        pipeline=pipeline,
        intake=intake,
        coordinator=coordinator,
        draining=asyncio.Event(),
        settler=settler,
        startup=startup,
        markets=markets,
    )


def instance_name(settings: Settings) -> str:
    """`MOAHOOK_INSTANCE_NAME`, else host:port (on logs, `/metrics` and the leases)."""
    return settings.instance_name or default_instance_name(settings.port)


def build_coordinator(settings: Settings, storage: Storage) -> Coordinator:
    """One process on SQLite holds everything; on PostgreSQL instances share the work
    through leases (SPEC section 12)."""
    name = instance_name(settings)
    if not storage.shared:
        return SoleInstance(name)

    async def wanted() -> set[str]:
        in_use = await storage.key_sets.keys_in_use()
        return {kis_lease(digest, env.value) for digest, env in in_use} | {TELEGRAM_LEASE}

    return LeaseKeeper(
        leases=storage.leases, instances=storage.instances, signals=storage.signals,
        name=name, wanted=wanted, ttl=settings.lease_seconds,
    )


def _instance_metrics(metrics: Metrics, coordinator: Coordinator) -> None:
    metrics.set_instance(coordinator.instance_name)

    def held(kind: str) -> Callable[[], float]:
        return lambda: float(sum(n.split(":")[0] == kind for n in coordinator.held_names()))

    for kind in ("kis", "telegram"):
        metrics.leases_held.labels(kind).set_function(held(kind))


def _forget_user(pipeline: OrderPipeline, intake: StorageIntake) -> Callable[[str], None]:
    """Another instance changed a user (pause, keys, environment, webhook token): what
    this one cached about them goes."""

    def forget(payload: str) -> None:
        if payload.isdigit():
            pipeline.forget_user(int(payload))
            intake.forget_user(int(payload))

    return forget


def _telegram_failures(metrics: Metrics) -> SendObserver:
    def observe(outcome: str) -> None:
        if outcome != "sent":
            metrics.telegram_send_failures.inc()

    return observe


def build_app(services: Services) -> tuple[web.Application, asyncio.Event]:
    """The aiohttp app with the bot attached; the event is set once the bot is up."""
    settings = services.settings
    bot_started = asyncio.Event()

    async def health() -> tuple[bool, str]:
        if services.draining.is_set():
            return False, DRAINING
        if not await services.storage.ping():
            return False, "database unreachable"
        if not bot_started.is_set():
            return False, services.startup.status
        return True, "ok"

    app = create_app(
        intake=services.intake,
        metrics=services.metrics,
        health=health,
        trusted_ips=settings.trusted_ips,
        trusted_proxies=settings.trusted_proxies,
        cleanup_ctx=[_intake_ctx(services)],
        draining=services.draining.is_set,
    )
    keychecker = KeyChecker(services.kis)
    dispatcher = create_dispatcher(
        storage=services.storage,
        keychecker=keychecker,
        watchers=services.watchers,
        notifier=services.notifier,
        public_url=settings.public_url,
        forget_webhook_token=services.intake.forget_token,
        alert_tester=services.pipeline,
        markets=services.markets,
        # Confirmed alerts and /close sells are placed by the pipeline (a wake-up the
        # lead routes across instances; here: this process's pipeline).
        run_alert=services.pipeline.run_stored,
        close_orders=CloseOrders(services.storage, services.pipeline.run_stored),
    )
    started = attach_bot(
        app,
        bot=services.bot,
        dispatcher=dispatcher,
        notifier=services.notifier,
        watchers=services.watchers,
        webhook_url=settings.telegram_webhook_url,
        webhook_secret=(
            settings.telegram_webhook_secret.reveal()
            if settings.telegram_webhook_secret
            else None
        ),
        coordinator=services.coordinator,
        shared=services.storage.shared,
        app_url=mini_app_url(settings.public_url),
        startup=services.startup,
    )
    # After the bot: its key checks end before the fill-notice watchers they use.
    setup_dashboard(app, dashboard_deps(services, keychecker))
    _portfolio_work(services)
    app.cleanup_ctx.append(_resume_ctx(services))
    app.cleanup_ctx.append(_coordination_ctx(services))
    app.cleanup_ctx.append(_ready_ctx(started, bot_started))
    return app, bot_started


def dashboard_deps(services: Services, keychecker: KeyChecker) -> DashboardDeps:
    """The web dashboard (`/app`) and what it needs of the Telegram side."""
    settings = services.settings
    assert settings.bot_token is not None  # open_services refuses to start without one
    return DashboardDeps(
        storage=services.storage,
        keychecker=keychecker,
        watch=services.watchers,
        send_code=ChatCodeSender(services.bot),
        bot_token=settings.bot_token,
        public_url=settings.public_url,
        forget_webhook_token=services.intake.forget_token,
        alert_templates={
            "strategy": alert_template(STRATEGY_ALERT),
            "indicator": alert_template(INDICATOR_ALERT),
        },
        trusted_proxies=settings.trusted_proxies,
    )
def _portfolio_work(services: Services) -> None:
    """SPEC section 15's periodic work, done by the one instance holding the `telegram`
    lease: confirm-mode expiry, the daily digest, reservation results."""
    wake = services.notifier.wake
    for work in (
        ExpirySweeper(services.storage, wake),
        DigestJob(services.storage, services.kis, services.markets, wake),
        ReservationResults(services.storage, services.kis, services.markets, wake),
    ):
        services.coordinator.add_work(TELEGRAM_LEASE, work)


def _intake_ctx(services: Services) -> CleanupContext:
    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        await services.intake.start()
        yield
        await services.intake.close()

    return ctx


def _coordination_ctx(services: Services) -> CleanupContext:
    """Last to start, first to stop: every piece of lease work is registered before the
    coordinator hands out leases, and on the way down the leases go before anything
    they cover is torn down."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        await services.storage.signals.start()
        services.pipeline.start_claiming()
        await services.coordinator.start()
        log.info("instance %s started", services.coordinator.instance_name)
        yield
        await services.coordinator.drain()
        await services.coordinator.close()

    return ctx


def _ready_ctx(started: asyncio.Event, mirror: asyncio.Event) -> CleanupContext:
    """Mirrors the bot's start into `mirror` without holding up the web server's start:
    `/healthz` answers (503, with the reason) while Telegram is still being reached."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        async def follow() -> None:
            await started.wait()
            mirror.set()

        task = asyncio.create_task(follow(), name="bot started")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


def _resume_ctx(services: Services) -> CleanupContext:
    """Pick up alerts accepted before a crash and reconcile unknown orders.

    The snapshot is taken before the web server accepts new alerts (this runs as a
    start-up step), so nothing in flight can be mistaken for a crash leftover. Each
    resumed alert waits (bounded) for its own user's fill-notice socket only: a global
    wait for every socket starved all orders when restarts came faster than it.
    """

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        report = await services.pipeline.resume()
        if report.alerts or report.reconciling:
            log.info(
                "resumed %d alert(s), reconciling %d order(s)", report.alerts, report.reconciling
            )
        yield
        await services.pipeline.close()
        await services.settler.close()

    return ctx

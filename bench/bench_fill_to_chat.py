"""Fill notice → Telegram chat latency (SPEC section 11) against the KIS simulator.

    python -m bench.bench_fill_to_chat

Prints `name=value` lines:
- fill_to_chat_ms_p50/p99: from a fill-notice data frame being returned by the
  client's WebSocket `recv()` (a wrapped `connect` stamps it) to the Telegram
  sendMessage request for that notice leaving aiogram (a session middleware stamps
  it before the request goes out). Same process, `time.perf_counter`.
- fill_to_chat_samples: how many notices were measured (acceptance and fill notices).
- fill_to_chat_paced_waits: how often the notifier's pacing made a send wait; the
  orders are spaced so that it stays 0 and the figure is the path, not the pacing.

moahook's side runs in this process as in `moahook serve`: the fill-notice watchers
(one WebSocket per user), SQLite storage (fill, order status and outbox written per
notice), the notifier and aiogram. Its peers — the KIS simulator and the Bot API
stand-in — run in a child process over loopback, as KIS and Telegram are remote in
production and must not take turns on moahook's event loop. Market orders are placed
one at a time through the KIS client, each recorded in storage the way the order
pipeline records it; each order gives one acceptance and, 20 ms later, one fill
notice, i.e. two chat messages (p50 of each kind is printed too). The acceptance notice
arrives while the order's acceptance is being recorded, as it does when the pipeline
records it: its write waits for that transaction. Orders rotate over many users
and are spaced so that neither Telegram's per-chat pace (1/s, small burst) nor the
global pace (25/s) holds a message back. The first order of every user is warm-up
(connections, the user's language) and not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import httpx
from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import SendMessage
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from bot.factory import create_bot_for
from bot.notifier import Notifier
from bot.standin import BotApiStandIn
from bot.watchers import WatcherSupervisor
from kis.client import KisClient
from kis.env import Endpoints, Environment
from kis.models import Account, AppCredentials, OrderRequest, Side
from kis.secret import Secret
from kis.sim import KisSimulator, SimAccount, generate_accounts
from kis.tokenstore import MemoryTokenStore
from kis.ws import HubOptions
from storage.facade import Storage

if TYPE_CHECKING:
    from aiogram.methods import Response, TelegramMethod
    from aiogram.methods.base import TelegramType

SYMBOL = "005930"
FIRST_CHAT = 900_001
ACCOUNT_PREFIX = "f2c"
# 2 messages per order every SPACING_S stays under the notifier's global 25/s; with
# USERS chats, each chat gets 2 messages every USERS * SPACING_S (≥ 3 s): under 1/s.
SPACING_S = 0.085
USERS = 40
# The simulator fills a market order this long after accepting it, as an exchange does
# not fill in the same instant: each notice is measured on its own, not queued behind
# the other one's chat message.
FILL_DELAY_S = 0.02


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Stamps:
    """Arrival times of data frames and departure times of sendMessage requests."""

    frames: list[float] = field(default_factory=list)
    sends: list[tuple[float, int]] = field(default_factory=list)  # (time, chat id)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def frame(self) -> None:
        self.frames.append(time.perf_counter())
        self.changed.set()

    def send(self, chat_id: int) -> None:
        self.sends.append((time.perf_counter(), chat_id))
        self.changed.set()

    async def wait(self, frames: int, sends: int, within: float = 10.0) -> None:
        async def reached() -> None:
            while len(self.frames) < frames or len(self.sends) < sends:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), within)


def _is_data_frame(message: str | bytes) -> bool:
    # KIS real-time data: "0|TR|count|data" or "1|TR|count|encrypted"; control is JSON.
    return isinstance(message, str) and message[1:2] == "|" and message[:1] in "01"


class _StampedConnection:
    """The client connection with `recv()` stamping each data frame it returns."""

    def __init__(self, ws: ClientConnection, stamps: Stamps) -> None:
        self._ws = ws
        self._stamps = stamps

    async def recv(self, decode: bool | None = None) -> str | bytes:
        message = await self._ws.recv(decode)
        if _is_data_frame(message):
            self._stamps.frame()
        return message

    def __getattr__(self, name: str) -> object:
        return getattr(self._ws, name)


def stamping_connect(stamps: Stamps) -> Callable[..., Awaitable[ClientConnection]]:
    async def connect(url: str, **options: object) -> ClientConnection:
        ws = await ws_connect(url, **options)  # type: ignore[arg-type]  # websockets' kwargs
        return cast(ClientConnection, _StampedConnection(ws, stamps))

    return connect


class StampSendMessage(BaseRequestMiddleware):
    """Outermost aiogram session middleware: sendMessage is about to leave."""

    def __init__(self, stamps: Stamps) -> None:
        self._stamps = stamps

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, SendMessage):
            self._stamps.send(int(method.chat_id))
        return await make_request(bot, method)


class PaceCounter:
    """The notifier's sleep: counts waits (pacing or retry_after) before sleeping."""

    def __init__(self) -> None:
        self.waits = 0

    async def __call__(self, seconds: float) -> None:
        self.waits += 1
        await asyncio.sleep(seconds)


class Outcomes:
    """The notifier's send outcomes: how many were marked sent, and anything else."""

    def __init__(self) -> None:
        self.sent = 0
        self.other: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, outcome: str) -> None:
        if outcome == "sent":
            self.sent += 1
        else:
            self.other.append(outcome)
        self._changed.set()

    async def wait(self, sent: int, within: float = 10.0) -> None:
        async def reached() -> None:
            while self.sent < sent:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), within)


@dataclass
class Trader:
    user_id: int
    chat_id: int
    creds: AppCredentials
    account: Account
    account_id: int  # moahook's account: its orders, fills and fill-notice connection


async def _setup_users(
    storage: Storage, watchers: WatcherSupervisor, accounts: list[SimAccount],
) -> list[Trader]:
    traders: list[Trader] = []
    for chat_id, sim_account in enumerate(accounts, start=FIRST_CHAT):
        user = await storage.users.get_or_create(chat_id, chat_id)
        env = sim_account.env
        await storage.key_sets.save(
            user.id, env, app_key=sim_account.app_key, app_secret=sim_account.app_secret,
            cano=sim_account.cano, product_code=sim_account.product_code,
            hts_id=sim_account.hts_id,
        )
        await storage.key_sets.record_checks(user.id, env, {}, validated=True)
        await watchers.sync(user.id)
        main = await storage.accounts.default(user.id)
        assert main is not None
        traders.append(Trader(
            user.id, chat_id,
            AppCredentials(app_key=sim_account.app_key, app_secret=Secret(sim_account.app_secret),
                           env=env),
            Account(sim_account.cano, sim_account.product_code), main.id,
        ))
    await watchers.wait_settled(15.0)
    not_ready = [t.user_id for t in traders if not watchers.is_ready(t.account_id)]
    if not_ready:
        raise RuntimeError(f"fill-notice connections not ready for users {not_ready}")
    return traders


async def _place(storage: Storage, kis: KisClient, trader: Trader, index: int) -> None:
    """One market order, recorded as the pipeline records it (alert, pending order,
    then the acceptance with the order number in one `record_accepted`). The pipeline
    also queues its own "accepted" chat notice there, under the same dedupe key as
    KIS's acceptance notice; here it queues none, so the message measured is the one
    from KIS's notice."""
    body = json.dumps({"ticker": SYMBOL, "action": "buy", "quantity": "1", "id": f"f{index}"})
    alert = await storage.alerts.accept(trader.user_id, body, json.loads(body), f"f{index}",
                                        account_id=trader.account_id)
    order = await storage.orders.create_pending(
        alert.alert_id, user_id=trader.user_id, environment=trader.creds.env, symbol=SYMBOL,
        side="buy", order_type="market", quantity=1, account_id=trader.account_id,
    )
    ack = await kis.place_order(trader.creds, trader.account, OrderRequest(SYMBOL, Side.BUY, 1))
    await storage.orders.record_accepted(order, ack.order_no, ack.branch)


# --- the peers: KIS simulator and Bot API stand-in, in a child process ---------------------


def _accounts(users: int) -> list[SimAccount]:
    return generate_accounts(users, Environment.PAPER, prefix=ACCOUNT_PREFIX, cash=10**13)


async def _serve_peers(users: int) -> None:
    """Child process: print the peers' addresses, serve until stdin closes, then print
    what they saw (sendMessage calls, fill notices sent)."""
    limits = dict.fromkeys(Environment, 10_000)
    async with KisSimulator(_accounts(users), rate_limits=limits,
                            fill_delay_s=FILL_DELAY_S) as sim, \
            BotApiStandIn() as standin:
        for chat_id in range(FIRST_CHAT, FIRST_CHAT + users):
            standin.user(chat_id, f"bench{chat_id}")
        print(json.dumps({
            "rest": {env.value: sim.rest_url(env) for env in Environment},
            "ws": {env.value: sim.ws_url(env) for env in Environment},
            "bot_token": standin.token, "bot_api": standin.base_url,
        }), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        print(json.dumps({
            "sendMessage": len(standin.calls_to("sendMessage")),
            "failed": sum(c.status != 200 for c in standin.calls_to("sendMessage")),
            "notices": len(sim.notices),
        }), flush=True)


async def _read_line(proc: asyncio.subprocess.Process) -> dict[str, object]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if not line:
        raise RuntimeError("the peers process ended early")
    answer: dict[str, object] = json.loads(line)
    return answer


def _urls(value: object) -> dict[Environment, str]:
    assert isinstance(value, dict)
    return {Environment(env): str(url) for env, url in value.items()}


# --- the measurement ----------------------------------------------------------------------


async def bench_fill_to_chat(
    data_dir: Path, *, users: int = USERS, orders: int = 200, spacing: float = SPACING_S,
) -> dict[str, float]:
    stamps = Stamps()
    pace = PaceCounter()
    accounts = _accounts(users)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_fill_to_chat", "--peers", "--users", str(users),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    try:
        peers = await _read_line(proc)
        endpoints = Endpoints(rest=_urls(peers["rest"]), ws=_urls(peers["ws"]))
        async with httpx.AsyncClient(timeout=10.0) as http:
            kis = KisClient(endpoints=endpoints, http=http, token_store=MemoryTokenStore(),
                            rate_limits=dict.fromkeys(Environment, 5000.0))
            figures, expected = await _measure(
                data_dir, kis, endpoints, str(peers["bot_token"]), str(peers["bot_api"]),
                accounts, stamps, pace, orders=orders, spacing=spacing,
            )
        assert proc.stdin is not None
        proc.stdin.close()
        seen = await _read_line(proc)
        if seen != {"sendMessage": expected, "failed": 0, "notices": expected}:
            raise RuntimeError(f"expected {expected} notices and messages, peers saw {seen}")
    finally:
        if proc.returncode is None:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return figures


async def _measure(
    data_dir: Path, kis: KisClient, endpoints: Endpoints, bot_token: str, bot_api: str,
    accounts: list[SimAccount], stamps: Stamps, pace: PaceCounter, *, orders: int,
    spacing: float,
) -> tuple[dict[str, float], int]:
    storage = await Storage.open(
        f"sqlite+aiosqlite:///{data_dir}/fill-{secrets.token_hex(4)}.db",
        [secrets.token_bytes(32)],
    )
    bot = create_bot_for(bot_token, bot_api)
    bot.session.middleware(StampSendMessage(stamps))
    marked = Outcomes()
    notifier = Notifier(bot, storage, sleep=pace, on_send=marked)
    watchers = WatcherSupervisor(
        storage=storage, kis=kis, endpoints=endpoints, wake=notifier.wake,
        hub_options=HubOptions(connect=stamping_connect(stamps)),
    )
    samples: list[float] = []
    try:
        traders = await _setup_users(storage, watchers, accounts)
        await notifier.start()
        warm_up = len(traders)
        paced_before = 0
        next_at = time.perf_counter()
        for index in range(warm_up + orders):
            if index == warm_up:
                paced_before = pace.waits
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at = max(next_at + spacing, time.perf_counter())
            trader = traders[index % len(traders)]
            frames, sends = len(stamps.frames), len(stamps.sends)
            await _place(storage, kis, trader, index)
            # Acceptance then fill: two frames on the user's socket, two messages.
            await stamps.wait(frames + 2, sends + 2)
            got = stamps.sends[sends:sends + 2]
            if any(chat != trader.chat_id for _, chat in got):
                raise RuntimeError("a message went to another chat")
            if index >= warm_up:
                for arrived, (left, _) in zip(stamps.frames[frames:frames + 2], got,
                                              strict=True):
                    samples.append((left - arrived) * 1000)
        expected = 2 * (warm_up + orders)
        # Every message marked sent, none left or failed.
        await marked.wait(expected)
        if marked.other or await storage.outbox.pending_count():
            raise RuntimeError(f"send outcomes other than sent: {marked.other}")
        paced = pace.waits - paced_before
    finally:
        await notifier.close()
        await watchers.close()
        await bot.session.close()
        await storage.close()
    figures = {
        "fill_to_chat_ms_p50": percentile(samples, 50),
        "fill_to_chat_ms_p99": percentile(samples, 99),
        "fill_to_chat_accepted_ms_p50": percentile(samples[0::2], 50),
        "fill_to_chat_filled_ms_p50": percentile(samples[1::2], 50),
        "fill_to_chat_samples": float(len(samples)),
        "fill_to_chat_paced_waits": float(paced),
    }
    return figures, expected


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--peers", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peers:
        asyncio.run(_serve_peers(args.users))
        return {}
    print("# fill_to_chat: data frame returned by the client's recv() → sendMessage leaving "
          f"aiogram; {args.orders} market orders (acceptance + fill notice each) over "
          f"{args.users} users, one order every {SPACING_S * 1000:.0f} ms so pacing never "
          f"holds a message; fill {FILL_DELAY_S * 1000:.0f} ms after acceptance; SQLite; "
          "KIS simulator and Bot API stand-in in a child process",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="moahook-bench-") as tmp:
        figures = asyncio.run(
            bench_fill_to_chat(Path(tmp), users=args.users, orders=args.orders)
        )
    for name, value in figures.items():
        print(f"{name}={value:.3f}" if not name.endswith(("samples", "waits"))
              else f"{name}={value:.0f}", flush=True)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])

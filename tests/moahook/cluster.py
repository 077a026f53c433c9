"""Several `moahook serve` processes on one PostgreSQL, with users whose keys are
registered and checked, the KIS simulator and the Bot API stand-in (tests' and the
benchmark's harness)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bot.standin import BotApiStandIn
from kis.env import Environment
from kis.secret import Secret
from kis.sim import KisSimulator, SimAccount, generate_accounts
from storage.crypto import encode_master_key
from storage.facade import Storage
from storage.records import OrderRecord
from tests.moahook.serving import ServeProcess, base_env

TAKEN = "this instance now runs the Telegram side"


@dataclass
class ClusterUser:
    account: SimAccount
    user_id: int
    token: str
    lease: str = ""
    chat_id: int = 0


@dataclass
class Cluster:
    url: str
    sim: KisSimulator
    standin: BotApiStandIn
    storage: Storage
    env: dict[str, str]
    cwd: Path
    users: list[ClusterUser]
    procs: list[ServeProcess] = field(default_factory=list)
    http: aiohttp.ClientSession | None = None

    def live(self) -> list[ServeProcess]:
        return [p for p in self.procs if p.returncode is None]

    async def start(self, name: str) -> ServeProcess:
        proc = ServeProcess({**self.env, "MOAHOOK_INSTANCE_NAME": name}, self.cwd)
        self.procs.append(proc)
        await proc.start()
        return proc

    async def post(
        self, user: ClusterUser, body: dict[str, object], to: ServeProcess | None = None,
        *, retry_elsewhere: bool = True,
    ) -> tuple[int, dict[str, object]]:
        """POST an alert as a reverse proxy would: to `to` (or any live instance), and to
        another instance when a connection is refused or the answer is 503."""
        assert self.http is not None
        targets = [to] if to is not None else random.sample(self.live(), len(self.live()))
        if retry_elsewhere and to is not None:
            targets += [p for p in self.live() if p is not to]
        last: tuple[int, dict[str, object]] = (0, {})
        for proc in targets:
            try:
                async with self.http.post(
                    f"{proc.url}/hook/{user.token}", data=json.dumps(body).encode(),
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    answer = await response.json(content_type=None)
                    last = (response.status, answer)
                    if response.status != 503:
                        return last
            except (aiohttp.ClientConnectionError, TimeoutError):
                continue
        return last

    async def owner(self, user: ClusterUser) -> ServeProcess | None:
        """The live process holding the lease of the user's key."""
        held = await self.storage.leases.holders([user.lease])
        if not held or held[0].holder is None:
            return None
        name = held[0].holder.rsplit("/", 1)[0]
        return next((p for p in self.live()
                     if p.env["MOAHOOK_INSTANCE_NAME"] == name), None)

    async def orders_of(self, alert_ids: Sequence[int]) -> dict[int, OrderRecord]:
        found: dict[int, OrderRecord] = {}
        for alert_id in alert_ids:
            order = await self.storage.orders.by_alert(alert_id)
            if order is not None:
                found[alert_id] = order
        return found

    def sim_orders_for(self, user: ClusterUser) -> int:
        return sum(1 for order in self.sim.orders if order.app_key == user.account.app_key)


async def register_users(
    storage: Storage, accounts: Sequence[SimAccount], env: Environment = Environment.PAPER
) -> list[ClusterUser]:
    """Users with validated keys of `env`, as `/keys` leaves them (done directly)."""
    from storage.coordination import lease_of

    users: list[ClusterUser] = []
    for n, account in enumerate(accounts, start=1):
        user = await storage.users.get_or_create(telegram_id=10_000 + n, chat_id=10_000 + n)
        if env is Environment.REAL:
            await storage.users.set_active_environment(user.id, env)
        await storage.key_sets.save(
            user.id, env, app_key=Secret(account.app_key),
            app_secret=Secret(account.app_secret), cano=account.cano,
            product_code=account.product_code, hts_id=account.hts_id,
        )
        await storage.key_sets.record_checks(user.id, env, {}, validated=True)
        keys = await storage.key_sets.get(user.id, env)
        users.append(ClusterUser(account, user.id, await storage.users.webhook_token(user.id),
                                 lease_of(keys) or "", 10_000 + n))
    return users


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path, url: str, *, instances: int = 3, users: int = 6, lease_seconds: float = 3,
    extra_env: dict[str, str] | None = None, keys: Environment = Environment.PAPER,
) -> AsyncIterator[Cluster]:
    """`instances` serve processes on the database at `url` (migrated by the first);
    each user has their own key of the `keys` environment."""
    master = os.urandom(32)
    accounts = generate_accounts(users, keys, holdings={"005930": 1_000}, cash=10**13)
    async with KisSimulator(accounts) as sim, BotApiStandIn() as standin:
        env = base_env(
            **sim.env_vars(),
            MOAHOOK_BOT_TOKEN=standin.token,
            MOAHOOK_TELEGRAM_API_URL=standin.base_url,
            MOAHOOK_DATABASE_URL=url,
            MOAHOOK_MASTER_KEY=encode_master_key(master),
            MOAHOOK_MARKET_HOURS="off",
            MOAHOOK_LEASE_SECONDS=str(lease_seconds),
            **{"MOAHOOK_LOG_LEVEL": "INFO", **(extra_env or {})},
        )
        storage = await Storage.open(url, [master])
        try:
            registered = await register_users(storage, accounts, keys)
            for user in registered:  # their chats exist, as after /start
                standin.user(user.chat_id, user.account.hts_id)
            group = Cluster(url, sim, standin, storage, env, tmp_path, registered)
            async with aiohttp.ClientSession() as http:
                group.http = http
                try:
                    for n in range(instances):
                        await group.start(f"web-{n}")
                    yield group
                finally:
                    for proc in group.procs:
                        await proc.close()
                    logs = os.environ.get("MOAHOOK_TEST_CLUSTER_LOGS")
                    if logs:  # for looking into a failure afterwards
                        for n, proc in enumerate(group.procs):
                            name = proc.env["MOAHOOK_INSTANCE_NAME"]
                            Path(logs, f"{n}-{name}.log").write_text(proc.output)  # noqa: ASYNC240 - a debugging aid
        finally:
            await storage.close()


async def settled(group: Cluster, within: float = 20.0) -> None:
    """Until every user's key has its fill notices registered (its owner runs it)."""
    await group.sim.wait_for(
        lambda: all(group.sim.ws.subscribed(u.account.app_key) for u in group.users), within
    )


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> None:
    """Until `check()` holds: another process's database state, looked at again and
    again (bounded)."""

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not so within {within} s")

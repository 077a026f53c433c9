"""Order pipeline benchmarks (SPEC section 11) against the KIS simulator over loopback.

    python -m bench.bench_pipeline

Three processes, as in production: this one runs moahook's side (aiohttp web server,
intake, SQLite storage, order pipeline, KIS client) on one event loop; the KIS
simulator runs in a child process (KIS answering instantly over loopback, never
sharing moahook's loop); the load generator of the throughput benchmarks runs in
another child. KIS access tokens are issued before any measurement (tokens cached).

Prints `name=value` lines:
- alert_to_order_ms_p50/p99: from the alert's HTTP request reaching the server (an
  outermost aiohttp middleware stamps it, once aiohttp has parsed the request line
  and headers) to the order-cash request leaving the KIS client (an httpx request
  hook, just before the request is written), one alert at a time, quantity mode.
- ack_ms_p50/p99: webhook response times seen by the sender at a steady 1,000
  alerts/s, open loop, 200 users, the pipeline placing every order; each user had
  sent one alert before (warm webhook-token cache and connections).
- alerts_per_s: accepted alerts per second with as many in flight as 64 senders keep
  (200 users, SQLite, pipeline attached); then every accepted alert id is checked
  in the database. front_only_*: the same without the pipeline (alerts only stored).
- kis_rate_utilization: one REAL key with a backlog of orders: orders/s at the
  simulator ÷ 20 (KIS's per-key limit), and the simulator's EGW00201 count must be 0.
- fanout10_ms_p50/p99: one alert for `"account": "all"` of a user with 10 accounts (ten
  app keys): from its HTTP request reaching the server to the last of its ten
  order-cash requests leaving, one alert at a time, quantity mode.
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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web
from sqlalchemy import select
from sqlmodel import col

from kis.client import KisClient
from kis.env import Endpoints, Environment
from kis.models import AppCredentials
from kis.secret import Secret
from kis.sim import KisSimulator, SimAccount, generate_accounts
from kis.tokenstore import MemoryTokenStore
from storage.facade import Storage
from storage.models import Alert as AlertRow
from webhook_server.app import create_app, make_runner
from webhook_server.dispatch import LOCAL, Route
from webhook_server.guards import AlwaysReady
from webhook_server.market_hours import MarketClock
from webhook_server.metrics import Metrics
from webhook_server.pipeline import OrderPipeline, kis_metrics_observer
from webhook_server.store_intake import AcceptedAlert, StorageIntake

KIS_LIMIT_PER_KEY = 20.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- the simulator in its own process ----------------------------------------------------


@dataclass(frozen=True)
class SimSpec:
    """Accounts are derived from (count, env, prefix): both processes build the same."""

    count: int
    env: Environment
    prefix: str
    limits: dict[Environment, int]
    cash: int = 10**13

    def accounts(self) -> list[SimAccount]:
        return generate_accounts(self.count, self.env, prefix=self.prefix, cash=self.cash)

    def to_json(self) -> str:
        return json.dumps({"count": self.count, "env": self.env.value, "prefix": self.prefix,
                           "cash": self.cash,
                           "limits": {env.value: n for env, n in self.limits.items()}})

    @classmethod
    def from_json(cls, text: str) -> SimSpec:
        raw = json.loads(text)
        return cls(int(raw["count"]), Environment(raw["env"]), str(raw["prefix"]),
                   {Environment(k): int(v) for k, v in raw["limits"].items()}, int(raw["cash"]))


@dataclass
class SimReport:
    order_times: list[float]  # the simulator's clock, for rates only
    rate_limited: int  # EGW00201 answers
    placed: int


class SimProcess:
    """The KIS simulator in a child process (`--sim`), driven over its stdin/stdout."""

    def __init__(self, spec: SimSpec) -> None:
        self.spec = spec
        self.urls: dict[Environment, str] = {}
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bench_pipeline", "--sim",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        answer = await self._ask(self.spec.to_json())
        self.urls = {Environment(k): str(v) for k, v in answer.items()}

    async def report(self) -> SimReport:
        answer = await self._ask("report")
        return SimReport([float(t) for t in answer["order_times"]],
                         int(answer["rate_limited"]), int(answer["placed"]))

    async def stop(self) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        assert proc.stdin is not None
        proc.stdin.write(b"stop\n")
        await proc.stdin.drain()
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 10)

    async def _ask(self, line: str) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(line.encode() + b"\n")
        await self._proc.stdin.drain()
        reply = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        if not reply:
            raise RuntimeError("the simulator process exited")
        answer: dict[str, Any] = json.loads(reply)
        return answer


async def _sim_child() -> None:
    loop = asyncio.get_running_loop()
    spec = SimSpec.from_json(await loop.run_in_executor(None, sys.stdin.readline))
    sim = KisSimulator(spec.accounts(), rate_limits=spec.limits)
    await sim.start()
    try:
        print(json.dumps({env.value: sim.rest_url(env) for env in Environment}), flush=True)
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "report":
            orders = [r for r in sim.requests if r.endpoint == "order"]
            print(json.dumps({
                "order_times": [r.time for r in orders],
                "rate_limited": sum(1 for r in sim.requests if r.msg_cd == "EGW00201"),
                "placed": len(sim.orders),
            }), flush=True)
    finally:
        await sim.stop()


# --- moahook's side ------------------------------------------------------------------------


@dataclass
class Service:
    sim: SimProcess
    storage: Storage
    pipeline: OrderPipeline
    intake: StorageIntake
    url: str
    tokens: list[str]
    arrivals: list[float]
    order_sent: list[float]
    order_event: asyncio.Event
    orders_awaited: list[int]  # order_event fires once this many requests left

    def expect(self, orders: int) -> None:
        self.order_event.clear()
        self.arrivals.clear()
        self.order_sent.clear()
        self.orders_awaited[0] = orders


@asynccontextmanager
async def service(
    data_dir: Path, spec: SimSpec, *,
    client_limits: dict[Environment, float] | None = None, pipeline_attached: bool = True,
    one_user: bool = False,
) -> AsyncIterator[Service]:
    """`one_user`: the spec's accounts are the accounts of one user (`main`, `a2`, …)
    instead of one user each."""
    accounts = spec.accounts()
    sim = SimProcess(spec)
    await sim.start()
    arrivals: list[float] = []
    order_sent: list[float] = []
    order_event = asyncio.Event()
    awaited = [1]

    async def on_request(request: httpx.Request) -> None:
        if request.url.path.endswith("order-cash"):
            order_sent.append(time.perf_counter())
            if len(order_sent) >= awaited[0]:
                order_event.set()

    http = httpx.AsyncClient(
        timeout=10.0, event_hooks={"request": [on_request]},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )
    metrics = Metrics()
    kis = KisClient(
        endpoints=Endpoints(rest=dict(sim.urls), ws={}),
        http=http, token_store=MemoryTokenStore(), rate_limits=client_limits,
        on_response=kis_metrics_observer(metrics),
    )
    storage = await Storage.open(
        f"sqlite+aiosqlite:///{data_dir}/bench-{secrets.token_hex(4)}.db",
        [secrets.token_bytes(32)],
    )
    pipeline = OrderPipeline(
        storage=storage, kis=kis, market=MarketClock(enforce=False), readiness=AlwaysReady(),
        metrics=metrics,
    )
    intake = StorageIntake(storage, pipeline if pipeline_attached else _Drop())
    await intake.start()
    tokens: list[str] = []
    for index, account in enumerate(accounts, start=1):
        user = await storage.users.get_or_create(1 if one_user else index,
                                                 1 if one_user else index)
        holder = (
            (await storage.accounts.create(user.id, f"a{index}", environment=account.env)).id
            if one_user and index > 1 else None
        )
        if account.env is Environment.REAL and holder is None:
            await storage.users.set_active_environment(user.id, Environment.REAL)
        await storage.key_sets.save(
            user.id, account.env, app_key=account.app_key, app_secret=account.app_secret,
            cano=account.cano, product_code=account.product_code, hts_id=account.hts_id,
            account_id=holder,
        )
        await storage.key_sets.record_checks(user.id, account.env, {}, validated=True,
                                             account_id=holder)
        if not one_user or index == 1:
            tokens.append(await storage.users.webhook_token(user.id))
        # tokens cached (SPEC section 11): issued before anything is measured
        await kis.tokens.access_token(
            AppCredentials(account.app_key, Secret(account.app_secret), account.env)
        )

    @web.middleware
    async def stamp(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        arrivals.append(time.perf_counter())
        return await handler(request)

    async def healthy() -> tuple[bool, str]:
        return True, ""

    app = create_app(intake=intake, metrics=metrics, health=healthy)
    app.middlewares.insert(0, stamp)  # outermost: the request has just arrived
    runner = make_runner(app)  # as served: masking access logger, collector settled
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Service(sim, storage, pipeline, intake, f"http://127.0.0.1:{port}", tokens,
                      arrivals, order_sent, order_event, awaited)
    finally:
        await runner.cleanup()
        await intake.close()
        await pipeline.close()
        await storage.close()
        await http.aclose()
        await sim.stop()


async def _missing(storage: Storage, alert_ids: list[int]) -> int:
    """How many of these accepted alerts are not in the database (must be 0)."""
    found = 0
    async with storage.db.session() as session:
        for start in range(0, len(alert_ids), 500):
            chunk = alert_ids[start:start + 500]
            found += len((await session.execute(
                select(col(AlertRow.id)).where(col(AlertRow.id).in_(chunk))
            )).all())
    return len(set(alert_ids)) - found


async def _warm_up(svc: Service) -> None:
    """One alert per user first: each webhook token is in the intake's cache, as it is
    for any user who has sent an alert since the process started."""
    async with aiohttp.ClientSession() as session:
        for index, token in enumerate(svc.tokens):
            async with session.post(f"{svc.url}/hook/{token}",
                                    data=alert_body(-1 - index)) as response:
                await response.read()
    await asyncio.wait_for(svc.pipeline.wait_idle(), 60)


class _Drop:
    """A sink for measuring the front alone: accepted alerts stay in the database."""

    def submit(self, accepted: AcceptedAlert) -> None:
        return None

    async def route(self, user_id: int, accounts: tuple[str, ...] = ()) -> list[Route]:
        return [LOCAL]


def alert_body(index: int) -> bytes:
    return json.dumps(
        {"ticker": "005930", "action": "buy", "quantity": "1", "id": f"b{index}"}
    ).encode()


# --- alert → order ----------------------------------------------------------------------


async def bench_alert_to_order(data_dir: Path, count: int = 300) -> dict[str, float]:
    spec = SimSpec(1, Environment.PAPER, "lat", {Environment.PAPER: 10_000,
                                                Environment.REAL: 10_000})
    async with service(data_dir, spec,
                       client_limits=dict.fromkeys(Environment, 5000.0)) as svc, \
            aiohttp.ClientSession() as session:
        url = f"{svc.url}/hook/{svc.tokens[0]}"
        samples: list[float] = []
        for index in range(count + 20):  # the first 20 warm up (token, connections)
            svc.expect(1)
            async with session.post(url, data=alert_body(index)) as response:
                await response.read()
            await asyncio.wait_for(svc.order_event.wait(), 10)
            if index >= 20:
                samples.append((svc.order_sent[0] - svc.arrivals[0]) * 1000)
            # one alert at a time: its bookkeeping after the order is not the next one's wait
            await asyncio.wait_for(svc.pipeline.wait_idle(), 10)
        await svc.pipeline.wait_idle()
    return {
        "alert_to_order_ms_p50": percentile(samples, 50),
        "alert_to_order_ms_p99": percentile(samples, 99),
    }


# --- load from another process ----------------------------------------------------------


def run_load(url: str | list[str], tokens: list[str], *, rate: float, seconds: float,
             concurrency: int) -> dict[str, Any]:
    """Runs `_load_main` in a child process; returns its JSON report. Several `url`s
    take the alerts in turn, as behind a load balancer."""
    urls = [url] if isinstance(url, str) else url
    spec = json.dumps({"urls": urls, "tokens": tokens, "rate": rate, "seconds": seconds,
                       "concurrency": concurrency})
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_pipeline", "--load"], input=spec.encode(),
        capture_output=True, check=True, timeout=seconds + 60,
    )
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


async def _load(spec: dict[str, object]) -> dict[str, object]:
    urls = [str(u) for u in spec["urls"]]  # type: ignore[attr-defined]
    tokens = [str(t) for t in spec["tokens"]]  # type: ignore[attr-defined]
    rate = float(str(spec["rate"]))
    seconds = float(str(spec["seconds"]))
    concurrency = int(str(spec["concurrency"]))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    accepted: list[str] = []
    nonce = secrets.token_hex(4)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(index: int) -> None:
            token = tokens[index % len(tokens)]
            body = json.dumps({"ticker": "005930", "action": "buy", "quantity": "1",
                               "id": f"{nonce}-{index}"}).encode()
            started = time.perf_counter()
            url = urls[index % len(urls)]
            async with session.post(f"{url}/hook/{token}", data=body) as response:
                payload = await response.json(content_type=None)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
            if response.status == 200 and payload.get("status") == "accepted":
                accepted.append(str(payload["alert_id"]))

        begun = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        index = 0
        if rate > 0:  # open loop: send on schedule whatever the answers do
            total = int(rate * seconds)
            for index in range(total):
                delay = begun + index / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one(index))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
        else:  # closed loop: `concurrency` senders as fast as answers come
            deadline = begun + seconds
            counter = iter(range(10**9))

            async def sender() -> None:
                while time.perf_counter() < deadline:
                    await one(next(counter))

            await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begun
    return {"latencies": latencies, "statuses": statuses, "accepted": accepted,
            "elapsed": elapsed}


async def bench_intake(
    data_dir: Path, users: int = 200, *, pipeline_attached: bool = True
) -> dict[str, float]:
    spec = SimSpec(users, Environment.REAL, "load", {Environment.PAPER: 2,
                                                     Environment.REAL: 20})
    async with service(data_dir, spec, pipeline_attached=pipeline_attached) as svc:
        await _warm_up(svc)
        loop = asyncio.get_running_loop()
        steady = await loop.run_in_executor(
            None, lambda: run_load(svc.url, svc.tokens, rate=1000, seconds=3, concurrency=500)
        )
        latencies = [float(x) for x in steady["latencies"]]
        burst = await loop.run_in_executor(
            None, lambda: run_load(svc.url, svc.tokens, rate=0, seconds=3, concurrency=64)
        )
        accepted = [int(x) for x in burst["accepted"]]
        elapsed = float(str(burst["elapsed"]))
        lost = await _missing(svc.storage, accepted + [int(x) for x in steady["accepted"]])
        errors = sum(
            int(count)
            for report in (steady, burst)
            for status, count in report["statuses"].items()
            if status != "200"
        )
        await svc.pipeline.close()
    if lost:
        raise SystemExit(f"{lost} accepted alerts are missing from the database")
    return {
        "ack_ms_p50": percentile(latencies, 50),
        "ack_ms_p99": percentile(latencies, 99),
        "alerts_per_s": len(accepted) / elapsed,
        "intake_errors": float(errors),
    }


# --- one alert to ten accounts ---------------------------------------------------------


async def bench_fanout(data_dir: Path, accounts: int = 10, count: int = 200) -> dict[str, float]:
    spec = SimSpec(accounts, Environment.PAPER, "fan", {Environment.PAPER: 10_000,
                                                       Environment.REAL: 10_000})
    async with service(data_dir, spec, client_limits=dict.fromkeys(Environment, 5000.0),
                       one_user=True) as svc, aiohttp.ClientSession() as session:
        url = f"{svc.url}/hook/{svc.tokens[0]}"
        samples: list[float] = []
        for index in range(count + 20):  # the first 20 warm up (tokens, connections)
            svc.expect(accounts)
            body = json.dumps({"ticker": "005930", "action": "buy", "quantity": "1",
                               "id": f"f{index}", "account": "all"}).encode()
            async with session.post(url, data=body) as response:
                await response.read()
            await asyncio.wait_for(svc.order_event.wait(), 10)
            if index >= 20:
                samples.append((svc.order_sent[accounts - 1] - svc.arrivals[0]) * 1000)
            await asyncio.wait_for(svc.pipeline.wait_idle(), 10)
        report = await svc.sim.report()
    if report.placed != (count + 20) * accounts:
        raise SystemExit(f"fan-out bench: {report.placed} orders placed, "
                         f"{(count + 20) * accounts} expected")
    return {
        f"fanout{accounts}_ms_p50": percentile(samples, 50),
        f"fanout{accounts}_ms_p99": percentile(samples, 99),
    }


# --- KIS rate utilisation ---------------------------------------------------------------


async def bench_rate(data_dir: Path, orders: int = 120) -> dict[str, float]:
    spec = SimSpec(1, Environment.REAL, "rate", {Environment.PAPER: 2,
                                                Environment.REAL: int(KIS_LIMIT_PER_KEY)})
    async with service(data_dir, spec) as svc, \
            aiohttp.ClientSession() as session:
        url = f"{svc.url}/hook/{svc.tokens[0]}"
        # A backlog: many alerts for different stocks of one key, all accepted at once.
        symbols = ["005930", "000660", "035720", "035420", "005380", "069500", "001440"]
        bodies = [
            json.dumps({"ticker": symbols[i % len(symbols)], "action": "buy",
                        "quantity": "1", "id": f"r{i}"}).encode()
            for i in range(orders)
        ]
        await asyncio.gather(*(session.post(url, data=b) for b in bodies))
        await asyncio.wait_for(svc.pipeline.wait_idle(), 60)
        report = await svc.sim.report()
        times = sorted(report.order_times)
        rejected = report.rate_limited
        placed = report.placed
    if placed != orders:
        raise SystemExit(f"rate bench: {placed} of {orders} orders placed")
    rate = (len(times) - 1) / (times[-1] - times[0])
    return {"kis_rate_utilization": rate / KIS_LIMIT_PER_KEY, "kis_egw00201": float(rejected)}


# --- entry point ------------------------------------------------------------------------


async def _main() -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="moahook-bench-") as tmp:
        data_dir = Path(tmp)
        results.update(await bench_alert_to_order(data_dir))
        results.update(await bench_intake(data_dir))
        front = await bench_intake(data_dir, pipeline_attached=False)
        results.update({f"front_only_{name}": value for name, value in front.items()})
        results.update(await bench_rate(data_dir))
        results.update(await bench_fanout(data_dir))
    return results


def main() -> dict[str, float]:
    print("# alert_to_order: aiohttp request received -> order-cash request leaving httpx, "
          "quantity mode, one alert at a time; KIS simulator in its own process over "
          "loopback, tokens issued beforehand")
    print("# ack/alerts_per_s: load generator in its own process, 200 users, SQLite, "
          "pipeline placing every order (front_only_*: pipeline detached)")
    print("# fanout10: one alert for all of a user's 10 accounts (10 app keys): request "
          "received -> the 10th order-cash request leaving")
    results = asyncio.run(_main())
    for name, value in results.items():
        print(f"{name}={value:.3f}")
    return results


def _load_entry() -> None:
    spec = json.loads(sys.stdin.read())
    report = asyncio.run(_load(spec))
    sys.stdout.write(json.dumps(report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sim", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.load:
        _load_entry()
    elif options.sim:
        asyncio.run(_sim_child())
    else:
        started = datetime.now(UTC)
        main()
        print(f"# took {(datetime.now(UTC) - started).total_seconds():.1f} s", file=sys.stderr)

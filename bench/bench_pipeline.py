"""Order pipeline benchmarks (SPEC section 11) against the KIS simulator over loopback.

    python -m bench.bench_pipeline

Prints `name=value` lines:
- alert_to_order_ms_p50/p99: from the alert's HTTP request reaching the server (an
  outermost aiohttp middleware stamps it) to the order-cash request leaving the KIS
  client (an httpx request hook), one alert at a time, quantity mode.
- ack_ms_p99: webhook response times at a steady 1,000 alerts/s, open loop, sent by a
  separate process (the load generator must not share the server's core budget).
- alerts_per_s: accepted alerts per second with as many in flight as the sender keeps
  (many users, SQLite); then every accepted alert id is checked in the database.
- kis_rate_utilization: one REAL key with a backlog of orders: orders/s at the
  simulator ÷ 20 (KIS's per-key limit), and the simulator's EGW00201 count must be 0.
The whole service runs in this process: intake, pipeline, storage and the simulator.
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

import aiohttp
import httpx
from aiohttp import web

from kis.client import KisClient
from kis.env import Endpoints, Environment
from kis.sim import KisSimulator, SimAccount, generate_accounts
from kis.tokenstore import MemoryTokenStore
from storage.facade import Storage
from webhook_server.app import create_app
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


@dataclass
class Service:
    sim: KisSimulator
    storage: Storage
    pipeline: OrderPipeline
    intake: StorageIntake
    url: str
    tokens: list[str]
    arrivals: list[float]
    order_sent: list[float]
    order_event: asyncio.Event


@asynccontextmanager
async def service(
    data_dir: Path, accounts: list[SimAccount], *, sim_limits: dict[Environment, int],
    client_limits: dict[Environment, float] | None = None, pipeline_attached: bool = True,
) -> AsyncIterator[Service]:
    sim = KisSimulator(accounts, rate_limits=sim_limits)
    await sim.start()
    arrivals: list[float] = []
    order_sent: list[float] = []
    order_event = asyncio.Event()

    async def on_request(request: httpx.Request) -> None:
        if request.url.path.endswith("order-cash"):
            order_sent.append(time.perf_counter())
            order_event.set()

    http = httpx.AsyncClient(
        timeout=10.0, event_hooks={"request": [on_request]},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )
    metrics = Metrics()
    kis = KisClient(
        endpoints=Endpoints(rest={env: sim.rest_url(env) for env in Environment}, ws={}),
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
        user = await storage.users.get_or_create(index, index)
        if account.env is Environment.REAL:
            await storage.users.set_active_environment(user.id, Environment.REAL)
        await storage.key_sets.save(
            user.id, account.env, app_key=account.app_key, app_secret=account.app_secret,
            cano=account.cano, product_code=account.product_code, hts_id=account.hts_id,
        )
        await storage.key_sets.record_checks(user.id, account.env, {}, validated=True)
        tokens.append(await storage.users.webhook_token(user.id))

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
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Service(sim, storage, pipeline, intake, f"http://127.0.0.1:{port}", tokens,
                      arrivals, order_sent, order_event)
    finally:
        await runner.cleanup()
        await intake.close()
        await pipeline.close()
        await storage.close()
        await http.aclose()
        await sim.stop()


class _Drop:
    """A sink for measuring the front alone: accepted alerts stay in the database."""

    def submit(self, accepted: AcceptedAlert) -> None:
        return None


def alert_body(index: int) -> bytes:
    return json.dumps(
        {"ticker": "005930", "action": "buy", "quantity": "1", "id": f"b{index}"}
    ).encode()


# --- alert → order ----------------------------------------------------------------------


async def bench_alert_to_order(data_dir: Path, count: int = 300) -> dict[str, float]:
    accounts = generate_accounts(1, Environment.PAPER, prefix="lat", cash=10**13)
    limits = {Environment.PAPER: 10_000, Environment.REAL: 10_000}
    async with service(data_dir, accounts, sim_limits=limits,
                       client_limits=dict.fromkeys(Environment, 5000.0)) as svc, \
            aiohttp.ClientSession() as session:
        url = f"{svc.url}/hook/{svc.tokens[0]}"
        samples: list[float] = []
        for index in range(count + 20):  # the first 20 warm up (token, connections)
            svc.order_event.clear()
            svc.arrivals.clear()
            svc.order_sent.clear()
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


def run_load(url: str, tokens: list[str], *, rate: float, seconds: float,
             concurrency: int) -> dict[str, object]:
    """Runs `_load_main` in a child process; returns its JSON report."""
    spec = json.dumps({"url": url, "tokens": tokens, "rate": rate, "seconds": seconds,
                       "concurrency": concurrency})
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_pipeline", "--load"], input=spec.encode(),
        capture_output=True, check=True, timeout=seconds + 60,
    )
    report: dict[str, object] = json.loads(completed.stdout)
    return report


async def _load(spec: dict[str, object]) -> dict[str, object]:
    url = str(spec["url"])
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
    accounts = generate_accounts(users, Environment.REAL, prefix="load", cash=10**13)
    limits = {Environment.PAPER: 2, Environment.REAL: 20}
    async with service(
        data_dir, accounts, sim_limits=limits, pipeline_attached=pipeline_attached
    ) as svc:
        loop = asyncio.get_running_loop()
        steady = await loop.run_in_executor(
            None, lambda: run_load(svc.url, svc.tokens, rate=1000, seconds=3, concurrency=500)
        )
        latencies = [float(x) for x in steady["latencies"]]  # type: ignore[attr-defined]
        burst = await loop.run_in_executor(
            None, lambda: run_load(svc.url, svc.tokens, rate=0, seconds=3, concurrency=64)
        )
        accepted = [int(x) for x in burst["accepted"]]  # type: ignore[attr-defined]
        elapsed = float(str(burst["elapsed"]))
        lost = 0
        for alert_id in accepted + [int(x) for x in steady["accepted"]]:  # type: ignore[attr-defined]
            if await svc.storage.alerts.get(alert_id) is None:
                lost += 1
        errors = sum(
            count for status, count in {**steady["statuses"], **burst["statuses"]}.items()  # type: ignore[dict-item]
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


# --- KIS rate utilisation ---------------------------------------------------------------


async def bench_rate(data_dir: Path, orders: int = 120) -> dict[str, float]:
    account = generate_accounts(1, Environment.REAL, prefix="rate", cash=10**13)[0]
    limits = {Environment.PAPER: 2, Environment.REAL: int(KIS_LIMIT_PER_KEY)}
    async with service(data_dir, [account], sim_limits=limits) as svc, \
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
        times = sorted(r.time for r in svc.sim.requests if r.endpoint == "order")
        rejected = sum(1 for r in svc.sim.requests if r.msg_cd == "EGW00201")
        placed = len(svc.sim.orders)
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
    return results


def main() -> dict[str, float]:
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
    if parser.parse_args().load:
        _load_entry()
    else:
        started = datetime.now(UTC)
        main()
        print(f"# took {(datetime.now(UTC) - started).total_seconds():.1f} s", file=sys.stderr)

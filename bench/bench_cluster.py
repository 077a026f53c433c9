"""Several instances on one PostgreSQL (SPEC section 12): three `moahook serve` processes.

    python -m bench.bench_cluster [--users 200] [--failovers 5] [--lease-seconds 10]

The PostgreSQL server is `MOAHOOK_BENCH_DATABASE_URL` (else `MOAHOOK_TEST_DATABASE_URL`,
else postgres@127.0.0.1:5432); the benchmark works in a database of its own, dropped
after. When no server answers it prints one `# pg: skipped …` line and exits 0.

Processes: three `moahook serve` (started as an operator starts them, only `MOAHOOK_*`
variables, the same but for port and name), this one (the KIS simulator and the Bot API
stand-in), and the load generator of `bench_pipeline` in a child, which sends alerts
to the three instances in turn, as a load balancer does. Every user has their own REAL
key (20 orders/s at the simulator), live fill-notice sockets held by the key's owner,
and has sent one alert to each instance before (warm webhook-token caches, KIS tokens
issued).

Prints `name=value` lines:
- pg_ack_ms_p50/p99: webhook answers at a steady 1,000 alerts/s, open loop, 3 s;
- pg_alerts_per_s: accepted alerts per second with as many in flight as 64 senders keep,
  3 s; afterwards every alert accepted by the run must reach the simulator as exactly
  one order and have its order row (else the benchmark fails: an alert was lost);
- failover_s_p50/p99: kill -9 of the instance owning a user's key, at once an alert
  for that user to another instance, until the simulator has that order; the killed
  instance is started again before the next round (`--failovers` rounds);
- pg_lease_s: MOAHOOK_LEASE_SECONDS of the run (failover's bound is that + 2).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # no type information shipped
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlmodel import col

from bench.bench_pipeline import percentile, run_load
from kis.env import Environment
from storage.models import Alert as AlertRow
from storage.models import Order as OrderRow
from tests.moahook.cluster import Cluster, ClusterUser, cluster, settled
from tests.moahook.pgdb import fresh_database

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
INSTANCES = 3
PLACED_WITHIN_S = float(os.environ.get("MOAHOOK_BENCH_PLACED_WITHIN", "180"))


def server_url() -> str:
    for name in ("MOAHOOK_BENCH_DATABASE_URL", "MOAHOOK_TEST_DATABASE_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return DEFAULT_SERVER


async def answers(url: str) -> str | None:
    """None when the server takes a connection, else why not (one line)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn), 5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    await conn.close()
    return None


async def warm_up(group: Cluster) -> int:
    """One alert per user to each instance; returns how many orders that placed."""
    sent = 0
    for proc in group.procs:
        for user in group.users:
            body: dict[str, object] = {"ticker": "005930", "action": "buy", "quantity": "1",
                    "id": f"warm-{proc.port}-{user.user_id}"}
            status, answer = await group.post(user, body, to=proc, retry_elsewhere=False)
            if (status, answer.get("status")) != (200, "accepted"):
                raise SystemExit(f"warm-up alert refused: {status} {answer}")
            sent += 1
    await group.sim.wait_for(lambda: len(group.sim.orders) >= sent, 120)
    return sent


async def load(group: Cluster, *, rate: float, seconds: float,
               concurrency: int) -> dict[str, object]:
    urls = [proc.url for proc in group.procs]
    tokens = [user.token for user in group.users]
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, lambda: run_load(
        urls, tokens, rate=rate, seconds=seconds, concurrency=concurrency))


async def all_placed(group: Cluster, expected: int, alert_ids: Sequence[int]) -> None:
    """Every accepted alert reached the simulator exactly once and has its order row."""
    try:
        await group.sim.wait_for(lambda: len(group.sim.orders) >= expected, PLACED_WITHIN_S)
    except TimeoutError:
        raise SystemExit(f"lost alerts: {len(group.sim.orders)} orders at KIS of {expected} "
                         f"accepted after {PLACED_WITHIN_S:.0f} s; alerts by (status, "
                         f"claimed by): {await alert_states(group)}") from None
    if len(group.sim.orders) != expected:
        raise SystemExit(f"{len(group.sim.orders)} orders at KIS for {expected} alerts")
    rows = 0
    async with group.storage.db.session() as session:
        for start in range(0, len(alert_ids), 500):
            chunk = alert_ids[start:start + 500]
            rows += len((await session.execute(
                select(col(OrderRow.alert_id)).where(col(OrderRow.alert_id).in_(chunk))
            )).all())
    if rows != len(set(alert_ids)):
        raise SystemExit(f"{len(set(alert_ids)) - rows} accepted alerts have no order row")


async def alert_states(group: Cluster) -> dict[str, int]:
    async with group.storage.db.session() as session:
        rows = (await session.execute(
            select(col(AlertRow.status), col(AlertRow.claimed_by), func.count())
            .group_by(col(AlertRow.status), col(AlertRow.claimed_by))
        )).all()
    return {f"{status}/{claimed}": int(n) for status, claimed, n in rows}


async def failover_rounds(group: Cluster, rounds: int, lease_s: float) -> list[float]:
    took: list[float] = []
    for round_no in range(rounds):
        user: ClusterUser = group.users[round_no % len(group.users)]
        owner = await group.owner(user)
        if owner is None:
            raise SystemExit(f"no live owner for user {user.user_id}'s key")
        before = len(group.sim.orders)  # nothing else is sent meanwhile
        started = time.monotonic()
        await owner.kill()
        status, answer = await group.post(
            user, {"ticker": "005930", "action": "buy", "quantity": "1",
                   "id": f"failover-{round_no}"})
        if (status, answer.get("status")) != (200, "accepted"):
            raise SystemExit(f"failover alert refused: {status} {answer}")
        def placed(n: int = before) -> bool:
            return len(group.sim.orders) > n

        await group.sim.wait_for(placed, lease_s + 30)
        if group.sim.orders[-1].app_key != user.account.app_key:
            raise SystemExit("the order after the failover is not that user's")
        took.append(time.monotonic() - started)
        print(f"# failover round {round_no + 1}: {took[-1]:.2f} s", flush=True)
        group.procs.remove(owner)
        await group.start(owner.env["MOAHOOK_INSTANCE_NAME"])
        await settled(group, within=lease_s + 30)
    return took


async def bench_cluster(users: int, failovers: int, lease_s: float) -> dict[str, float]:
    server = server_url()
    why = await answers(server)
    if why is not None:
        shown = make_url(server).render_as_string(hide_password=True)
        print(f"# pg: skipped — no PostgreSQL answers at {shown} ({why}); set "
              "MOAHOOK_BENCH_DATABASE_URL to measure the pg_* and failover figures", flush=True)
        return {"pg_skipped": 1.0}
    with tempfile.TemporaryDirectory(prefix="moahook-bench-pg-") as tmp:
        async with fresh_database(server) as url, cluster(
            Path(tmp), url, instances=INSTANCES, users=users, lease_seconds=lease_s,
            keys=Environment.REAL,
        ) as group:
            started = time.monotonic()
            await settled(group, within=60)
            print(f"# every key's fill notices registered {time.monotonic() - started:.1f} s "
                  "after the instances started", flush=True)
            placed = await warm_up(group)
            print(f"# {INSTANCES} instances, {users} users with REAL keys, warm "
                  f"({placed} alerts placed)", flush=True)
            steady = await load(group, rate=1000, seconds=3, concurrency=500)
            burst = await load(group, rate=0, seconds=3, concurrency=64)
            refused = {status: count for report in (steady, burst)
                       for status, count in report["statuses"].items()  # type: ignore[attr-defined]
                       if status != "200"}
            if refused:
                raise SystemExit(f"alerts not accepted: {refused}")
            accepted = [int(x) for report in (steady, burst)
                        for x in report["accepted"]]  # type: ignore[attr-defined]
            waited = time.monotonic()
            await all_placed(group, placed + len(accepted), accepted)
            print(f"# all {len(accepted)} accepted alerts placed once, checked "
                  f"{time.monotonic() - waited:.1f} s after the load", flush=True)
            if group.sim.ws.in_use_refusals:
                raise SystemExit(f"KIS refused a second session: {group.sim.ws.in_use_refusals}")
            latencies = [float(x) for x in steady["latencies"]]  # type: ignore[attr-defined]
            results = {
                "pg_ack_ms_p50": percentile(latencies, 50),
                "pg_ack_ms_p99": percentile(latencies, 99),
                "pg_alerts_per_s": len(burst["accepted"])  # type: ignore[arg-type]
                / float(str(burst["elapsed"])),
                "pg_alerts_checked": float(len(accepted)),
            }
            took = await failover_rounds(group, failovers, lease_s)
            # After kill -9 the dead session may linger at KIS; the new owner retries.
            print(f"# OPSP8996 refusals during the failovers: "
                  f"{sum(group.sim.ws.in_use_refusals.values())}", flush=True)
            results.update({
                "failover_s_p50": percentile(took, 50),
                "failover_s_p99": percentile(took, 99),
                "pg_lease_s": lease_s,
            })
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_cluster")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--lease-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    results = asyncio.run(bench_cluster(args.users, args.failovers, args.lease_seconds))
    for name, value in results.items():
        print(f"{name}={value:.3f}", flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])

"""Resident memory of 1,000 live fill-notice connections (SPEC section 11: rss_mb_1000_users).

The simulator runs in a child process so that only moahook's side is measured: this
process holds a FillNoticeHub with one FillNoticeConnection per simulated account,
each subscribed with its own approval key and HTS ID over loopback.

    python -m bench.bench_ws_memory [--users 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from kis.env import TR_IDS, Environment
from kis.fillnotice import FillNotice
from kis.ws import FillNoticeHub, HubOptions, Status

USERS = 1000
ENV = Environment.PAPER
READY_BOUND_S = 120.0
APPROVAL_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class SimInfo:
    rest_url: str
    ws_url: str
    users: list[tuple[str, str, str]]  # (app key, app secret, HTS ID)


def rss_mb() -> float:
    """VmRSS of this process, from /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- the simulator side (child process) ------------------------------------------------


def _simulator_process(pipe: multiprocessing.connection.Connection, users: int) -> None:
    _raise_fd_limit(users * 2 + 256)
    asyncio.run(_serve_simulator(pipe, users))


async def _serve_simulator(pipe: multiprocessing.connection.Connection, users: int) -> None:
    from kis.sim import KisSimulator
    from kis.sim.accounts import generate_accounts

    accounts = generate_accounts(users, ENV, prefix="bench")
    sim = KisSimulator(accounts=accounts)
    await sim.start()
    try:
        pipe.send(
            SimInfo(
                rest_url=sim.rest_url(ENV),
                ws_url=sim.ws_url(ENV) + "/tryitout",
                users=[(a.app_key, a.app_secret, a.hts_id) for a in accounts],
            )
        )
        # Serve until the parent says stop (or goes away).
        await asyncio.get_running_loop().run_in_executor(None, _wait_for_stop, pipe)
    finally:
        await sim.stop()


def _wait_for_stop(pipe: multiprocessing.connection.Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        pipe.recv()


# --- the moahook side (this process) ---------------------------------------------------


async def _approval_keys(info: SimInfo) -> list[str]:
    limit = asyncio.Semaphore(APPROVAL_CONCURRENCY)
    async with httpx.AsyncClient(base_url=info.rest_url, timeout=30.0) as http:

        async def one(app_key: str, app_secret: str) -> str:
            async with limit:
                response = await http.post(
                    "/oauth2/Approval",
                    json={
                        "grant_type": "client_credentials",
                        "appkey": app_key,
                        "secretkey": app_secret,
                    },
                )
                response.raise_for_status()
                key = response.json()["approval_key"]
                assert isinstance(key, str)
                return key

        return list(await asyncio.gather(*(one(k, s) for k, s, _ in info.users)))


def _fixed(key: str) -> Callable[[], Awaitable[str]]:
    async def approval_key() -> str:
        return key

    return approval_key


async def _ignore(notice: FillNotice) -> None:
    return None


async def _measure(info: SimInfo) -> dict[str, float]:
    approval_started = time.perf_counter()
    keys = await _approval_keys(info)
    approval_s = time.perf_counter() - approval_started
    users = [(hts_id, key) for (_, _, hts_id), key in zip(info.users, keys, strict=True)]
    del keys

    hub: FillNoticeHub[int] = FillNoticeHub(HubOptions())
    tr_id = TR_IDS[ENV].fill_notice
    baseline = rss_mb()
    started = time.perf_counter()
    try:
        connections = [
            await hub.ensure(
                index,
                url=info.ws_url,
                tr_id=tr_id,
                hts_id=hts_id,
                approval_key=_fixed(key),
                on_notice=_ignore,
                name=f"bench {index}",
            )
            for index, (hts_id, key) in enumerate(users)
        ]
        deadline = started + READY_BOUND_S
        states = await asyncio.gather(
            *(c.wait_ready(max(0.0, deadline - time.perf_counter())) for c in connections)
        )
        connect_all_s = time.perf_counter() - started
        ready = sum(state.status is Status.READY for state in states)
        # Let the last handshakes' transient buffers go before measuring.
        await asyncio.sleep(0.5)
        rss = rss_mb()
    finally:
        await hub.close()
    users_n = len(users)
    return {
        f"rss_mb_{users_n}_users": round(rss, 1),
        "rss_mb_baseline": round(baseline, 1),
        "rss_kb_per_connection": round((rss - baseline) * 1024 / users_n, 1),
        "ws_connect_all_s": round(connect_all_s, 3),
        "ws_ready_connections": float(ready),
        "ws_users": float(users_n),
        "approval_keys_all_s": round(approval_s, 3),
    }


def main(users: int = USERS) -> dict[str, float]:
    """Run the benchmark and print one `name=value` line per figure."""
    _raise_fd_limit(users * 2 + 256)
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    child = context.Process(
        target=_simulator_process, args=(child_end, users), name="kis-sim", daemon=True
    )
    child.start()
    try:
        if not parent_end.poll(60.0):
            raise RuntimeError("the simulator did not start within 60 s")
        info = parent_end.recv()
        assert isinstance(info, SimInfo)
        results = asyncio.run(_measure(info))
    finally:
        with contextlib.suppress(OSError):
            parent_end.send("stop")
        child.join(15.0)
        if child.is_alive():
            child.terminate()
            child.join(5.0)
    for name, value in results.items():
        print(f"{name}={value}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    main(parser.parse_args().users)

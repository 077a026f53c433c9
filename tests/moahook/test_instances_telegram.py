"""Several `moahook serve` processes on one PostgreSQL: exactly one polls Telegram,
and a SIGTERM hands the bot over to another instance within about a second."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bot.standin import BotApiStandIn
from kis.sim import KisSimulator
from storage.crypto import encode_master_key
from tests.moahook.pgdb import fresh_database
from tests.moahook.serving import ServeProcess, base_env

MASTER_KEY = encode_master_key(bytes(range(32)))
TAKEN = "this instance now runs the Telegram side"


@contextlib.asynccontextmanager
async def instances(
    tmp_path: Path, count: int, standin: BotApiStandIn, sim: KisSimulator
) -> AsyncIterator[list[ServeProcess]]:
    async with fresh_database() as url:
        env = base_env(
            **sim.env_vars(),
            MOAHOOK_BOT_TOKEN=standin.token,
            MOAHOOK_TELEGRAM_API_URL=standin.base_url,
            MOAHOOK_DATABASE_URL=url,
            MOAHOOK_MASTER_KEY=MASTER_KEY,
            MOAHOOK_MARKET_HOURS="off",
            MOAHOOK_LEASE_SECONDS="3",
        )
        procs = [
            ServeProcess({**env, "MOAHOOK_INSTANCE_NAME": f"web-{n}"}, tmp_path)
            for n in range(count)
        ]
        try:
            for proc in procs:  # one after another: migrations run once, then no-ops
                await proc.start()
            yield procs
        finally:
            for proc in procs:
                await proc.close()


async def first_line(procs: list[ServeProcess], marker: str, within: float) -> ServeProcess:
    """The first of `procs` to log a line containing `marker`."""
    waits = {asyncio.ensure_future(p.wait_for_line(marker, within)): p for p in procs}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        winner = done.pop()
        winner.result()
        return waits[winner]
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def test_one_instance_polls_and_sigterm_hands_the_bot_over(tmp_path: Path) -> None:
    async with (
        KisSimulator() as sim,
        BotApiStandIn() as standin,
        instances(tmp_path, 3, standin, sim) as procs,
    ):
        await standin.wait_until(lambda: standin.long_polls_waiting == 1, 15)
        holders = [p for p in procs if TAKEN in p.output]
        assert len(holders) == 1
        holder = holders[0]
        # Steady state: one poller, no 409.
        user = standin.user(9001, "Nari", language_code="en")
        mark = user.mark()
        await user.send_text("/help")
        await user.wait_for_bot_message("/keys", after=mark)
        assert standin.conflicts == 0
        assert standin.long_polls_waiting == 1
        async with httpx.AsyncClient() as http:
            for proc in procs:
                health = await http.get(proc.url + "/healthz")
                assert health.status_code == 200, (proc.port, health.text)
        # SIGTERM: the bot moves to another instance at once, not after the lease.
        loop = asyncio.get_running_loop()
        started = loop.time()
        holder.signal(15)
        await first_line([p for p in procs if p is not holder], TAKEN, 5)
        assert loop.time() - started < 2.5
        assert await holder.wait(15) == 0
        mark = user.mark()
        await user.send_text("/help")
        await user.wait_for_bot_message("/keys", after=mark, timeout=10)
        await standin.wait_until(lambda: standin.long_polls_waiting == 1, 5)
        assert standin.conflicts == 0

"""`moahook sim`: the simulator alone, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from kis.env import Environment
from kis.sim.accounts import demo_account
from kis.sim.server import KisSimulator


def banner(sim: KisSimulator) -> list[str]:
    """The `NAME=value` lines `moahook sim` prints first (SPEC section 2)."""
    demo = sim.account(demo_account().app_key)
    values = {
        **sim.env_vars(),
        "SIM_APP_KEY": demo.app_key,
        "SIM_APP_SECRET": demo.app_secret,
        "SIM_ACCOUNT": demo.account_number,
        "SIM_HTS_ID": demo.hts_id,
    }
    return [f"{name}={value}" for name, value in values.items()]


async def serve(port: int, ws_port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sim = KisSimulator()
    await sim.start("127.0.0.1", port, ws_port)
    try:
        announce(sim)
        await stop.wait()
    finally:
        await sim.stop()


def announce(sim: KisSimulator) -> None:
    for line in banner(sim):
        print(line)
    sys.stdout.flush()
    print(
        f"KIS simulator on 127.0.0.1 (REST {sim.port}, WebSocket {sim.ws_port}); "
        f"paper demo account {sim.account(demo_account().app_key).account_number} "
        f"({Environment.PAPER.label_ko}). Ctrl-C stops it.",
        file=sys.stderr,
    )


def run_sim(port: int, ws_port: int) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(port, ws_port))
    return 0

"""A local server speaking KIS's REST and WebSocket protocol (see SPEC section 10).

    async with KisSimulator() as sim:
        sim.rest_url(Environment.PAPER)   # http://127.0.0.1:P/paper
        sim.ws_url(Environment.PAPER)     # ws://127.0.0.1:Q/paper (+ /tryitout)
"""

from kis.sim.accounts import (
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_CANO,
    DEMO_HTS_ID,
    SimAccount,
    demo_account,
    demo_real_account,
    generate_accounts,
)
from kis.sim.clock import ManualClock
from kis.sim.faults import Fault, Faults
from kis.sim.market import DEFAULT_INSTRUMENTS, Instrument
from kis.sim.orders import OrderKind, OrderStatus, Side, SimFill, SimOrder
from kis.sim.rest import RecordedRequest
from kis.sim.server import KisSimulator, SentNotice

DEMO_ACCOUNT = demo_account

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "DEMO_ACCOUNT",
    "DEMO_APP_KEY",
    "DEMO_APP_SECRET",
    "DEMO_CANO",
    "DEMO_HTS_ID",
    "Fault",
    "Faults",
    "Instrument",
    "KisSimulator",
    "ManualClock",
    "OrderKind",
    "OrderStatus",
    "RecordedRequest",
    "SentNotice",
    "SimAccount",
    "SimFill",
    "SimOrder",
    "Side",
    "demo_account",
    "demo_real_account",
    "generate_accounts",
]

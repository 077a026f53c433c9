"""Simulated KIS accounts: keys, account number, HTS ID, cash and holdings (live state)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from kis.env import Environment

APP_KEY_LEN = 36
APP_SECRET_LEN = 180


def derive_key(seed: str, length: int, prefix: str = "", *, alnum: bool = True) -> str:
    """A deterministic key-looking string of exactly `length` chars.

    App keys are letters and digits; app secrets also carry base64's `+` and `/`.
    """
    out = prefix
    counter = 0
    while len(out) < length:
        digest = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        chunk = base64.b64encode(digest).decode().rstrip("=")
        out += "".join(c for c in chunk if c.isalnum()) if alnum else chunk
        counter += 1
    return out[:length]


@dataclass(eq=False)
class SimAccount:
    """One app key and the account it trades. The simulator mutates it as orders fill."""

    app_key: str = field(repr=False)
    app_secret: str = field(repr=False)
    env: Environment
    cano: str
    product_code: str = "01"
    hts_id: str = ""
    cash: int = 0
    holdings: dict[str, int] = field(default_factory=dict)
    name: str = ""
    # Purchase average per symbol; filled from the base price when missing.
    avg_prices: dict[str, float] = field(default_factory=dict)
    # Cash held for open buys, shares held for open sells.
    reserved_cash: int = 0
    reserved_qty: dict[str, int] = field(default_factory=dict)
    # US stocks: USD cash, holdings, purchase averages, what open orders hold.
    usd_cash: Decimal = Decimal(0)
    us_holdings: dict[str, int] = field(default_factory=dict)
    us_avg: dict[str, Decimal] = field(default_factory=dict)
    usd_reserved: Decimal = Decimal(0)
    us_reserved: dict[str, int] = field(default_factory=dict)
    # Realised P&L of domestic sells per KST date (YYYYMMDD), and what the sold shares
    # cost, as KIS books them against the average purchase price.
    realised: dict[str, int] = field(default_factory=dict)
    realised_cost: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.hts_id:
            raise ValueError("SimAccount needs an HTS ID")
        if len(self.cano) != 8 or not self.cano.isdigit():
            raise ValueError("CANO must be 8 digits")
        if len(self.product_code) != 2 or not self.product_code.isdigit():
            raise ValueError("ACNT_PRDT_CD must be 2 digits")

    @property
    def account_number(self) -> str:
        """`12345678-01` form."""
        return f"{self.cano}-{self.product_code}"

    @property
    def available_cash(self) -> int:
        return self.cash - self.reserved_cash

    def sellable(self, symbol: str) -> int:
        return self.holdings.get(symbol, 0) - self.reserved_qty.get(symbol, 0)

    @property
    def usd_available(self) -> Decimal:
        return self.usd_cash - self.usd_reserved

    def us_sellable(self, symbol: str) -> int:
        return self.us_holdings.get(symbol, 0) - self.us_reserved.get(symbol, 0)


DEMO_APP_KEY = derive_key("moahook-demo-paper-key", APP_KEY_LEN, prefix="PS")
DEMO_APP_SECRET = derive_key("moahook-demo-paper-secret", APP_SECRET_LEN, alnum=False)
DEMO_REAL_APP_KEY = derive_key("moahook-demo-real-key", APP_KEY_LEN, prefix="PS")
DEMO_REAL_APP_SECRET = derive_key("moahook-demo-real-secret", APP_SECRET_LEN, alnum=False)
DEMO_CANO = "12345678"
DEMO_REAL_CANO = "87654321"
DEMO_HTS_ID = "moademo"
DEMO_REAL_HTS_ID = "moareal"
DEMO_CASH = 10_000_000
DEMO_USD = Decimal("10000.00")


def demo_account() -> SimAccount:
    """The built-in PAPER account the demo and `moahook sim` print."""
    return _demo(Environment.PAPER, DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_CANO, DEMO_HTS_ID)


def demo_real_account() -> SimAccount:
    """A REAL-environment account with its own keys (wrong-environment tests, real TR IDs)."""
    return _demo(
        Environment.REAL, DEMO_REAL_APP_KEY, DEMO_REAL_APP_SECRET, DEMO_REAL_CANO,
        DEMO_REAL_HTS_ID,
    )


def _demo(env: Environment, app_key: str, app_secret: str, cano: str, hts_id: str) -> SimAccount:
    # Both demo accounts start alike: same cash, ten Samsung shares, USD and five Apple
    # shares, same holder name.
    return SimAccount(
        app_key=app_key,
        app_secret=app_secret,
        env=env,
        cano=cano,
        product_code="01",
        hts_id=hts_id,
        cash=DEMO_CASH,
        holdings={"005930": 10},
        name="홍길동",
        usd_cash=DEMO_USD,
        us_holdings={"AAPL": 5},
    )


def generate_accounts(
    count: int,
    env: Environment = Environment.PAPER,
    *,
    start: int = 1,
    cash: int = DEMO_CASH,
    holdings: dict[str, int] | None = None,
    prefix: str = "user",
) -> list[SimAccount]:
    """`count` distinct accounts (keys, CANO, HTS ID derived from the index) for load tests."""
    base = 50_000_000 if env is Environment.PAPER else 60_000_000
    accounts = []
    for index in range(start, start + count):
        seed = f"{prefix}:{env.value}:{index}"
        accounts.append(
            SimAccount(
                app_key=derive_key(seed + ":key", APP_KEY_LEN, prefix="PS"),
                app_secret=derive_key(seed + ":secret", APP_SECRET_LEN, alnum=False),
                env=env,
                cano=f"{base + index:08d}",
                hts_id=f"{prefix}{index:05d}",
                cash=cash,
                holdings=dict(holdings or {}),
                name=f"사용자{index}",
            )
        )
    return accounts

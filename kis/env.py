"""KIS environments (real and paper) and the TR IDs that differ between them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta, timezone

# KRX and KIS time (Korea keeps no daylight saving time).
KST = timezone(timedelta(hours=9), "KST")


class Environment(enum.StrEnum):
    REAL = "real"
    PAPER = "paper"

    @property
    def other(self) -> Environment:
        return Environment.PAPER if self is Environment.REAL else Environment.REAL

    @property
    def label_ko(self) -> str:
        return "실전투자" if self is Environment.REAL else "모의투자"


DEFAULT_REST_URLS = {
    Environment.REAL: "https://openapi.koreainvestment.com:9443",
    Environment.PAPER: "https://openapivts.koreainvestment.com:29443",
}
DEFAULT_WS_URLS = {
    Environment.REAL: "ws://ops.koreainvestment.com:21000",
    Environment.PAPER: "ws://ops.koreainvestment.com:31000",
}


@dataclass(frozen=True, slots=True)
class TrIds:
    buy: str
    sell: str
    revise_cancel: str
    price: str
    balance: str
    buyable: str
    daily_executions: str
    fill_notice: str


TR_IDS = {
    Environment.REAL: TrIds(
        buy="TTTC0012U",
        sell="TTTC0011U",
        revise_cancel="TTTC0013U",
        price="FHKST01010100",
        balance="TTTC8434R",
        buyable="TTTC8908R",
        daily_executions="TTTC0081R",
        fill_notice="H0STCNI0",
    ),
    Environment.PAPER: TrIds(
        buy="VTTC0012U",
        sell="VTTC0011U",
        revise_cancel="VTTC0013U",
        price="FHKST01010100",
        balance="VTTC8434R",
        buyable="VTTC8908R",
        daily_executions="VTTC0081R",
        fill_notice="H0STCNI9",
    ),
}



@dataclass(frozen=True, slots=True)
class OverseasTrIds:
    """US stocks through KIS's overseas API (KIS.md section 13). Written out per
    environment on purpose: the paper sell is VTTT1001U, not a letter swap of TTTT1006U."""

    buy: str
    sell: str
    revise_cancel: str
    price: str
    balance: str
    executions: str
    buying_power: str
    fill_notice: str


OVERSEAS_TR_IDS = {
    Environment.REAL: OverseasTrIds(
        buy="TTTT1002U",
        sell="TTTT1006U",
        revise_cancel="TTTT1004U",
        price="HHDFS00000300",
        balance="TTTS3012R",
        executions="TTTS3035R",
        buying_power="TTTS3007R",
        fill_notice="H0GSCNI0",
    ),
    Environment.PAPER: OverseasTrIds(
        buy="VTTT1002U",
        sell="VTTT1001U",
        revise_cancel="VTTT1004U",
        price="HHDFS00000300",
        balance="VTTS3012R",
        executions="VTTS3035R",
        buying_power="VTTS3007R",
        fill_notice="H0GSCNI9",
    ),
}

# Requests per second per app key (KIS.md section 9: 20/s real, 2/s paper). Both run
# 5 % under KIS's limit: at exactly 2/s, request k+2 lands 1.000 s after request k and
# any jitter puts three in one second and KIS answers EGW00201.
RATE_LIMITS = {Environment.REAL: 19.0, Environment.PAPER: 1.9}
# KIS's own hard limit: requests in any one second per app key (KIS.md section 9).
KIS_PER_SECOND = {Environment.REAL: 20, Environment.PAPER: 2}

# Rows per page of paged inquiries (KIS.md section 8).
BALANCE_PAGE_ROWS = {Environment.REAL: 50, Environment.PAPER: 20}
EXECUTIONS_PAGE_ROWS = {Environment.REAL: 100, Environment.PAPER: 15}


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Base URLs for both environments; defaults are KIS's own hosts."""

    rest: dict[Environment, str]
    ws: dict[Environment, str]

    @classmethod
    def kis_defaults(cls) -> Endpoints:
        return cls(rest=dict(DEFAULT_REST_URLS), ws=dict(DEFAULT_WS_URLS))

    def rest_url(self, env: Environment) -> str:
        return self.rest[env].rstrip("/")

    def ws_url(self, env: Environment) -> str:
        """Where the fill-notice client connects: `{ws base}/tryitout` (KIS.md section 1)."""
        return self.ws[env].rstrip("/") + "/tryitout"

"""Can TradingView post to a webhook URL? TradingView's rules, as one pure function.

TradingView posts webhooks to `https` URLs on port 443 (or 80) of a host it can reach
from the internet: not a loopback, private or link-local address, nor a name that
only resolves inside a local network. moahook
shows users their URL as `{MOAHOOK_PUBLIC_URL}/hook/{token}`, so these rules apply to
that setting: `/webhook` and `/status` warn under it, and start-up logs it.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Final
from urllib.parse import urlsplit

TRADINGVIEW_PORTS: Final = (80, 443)
# Names that never resolve on the internet (RFC 6761, RFC 6762 and common local suffixes).
_LOCAL_SUFFIXES: Final = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


class Problem(enum.StrEnum):
    NOT_HTTPS = "not_https"
    LOCAL_HOST = "local_host"  # loopback, private, link-local, or a local-only name
    PORT = "port"  # a port other than 80/443
    NOT_A_URL = "not_a_url"


def tradingview_problems(url: str) -> list[Problem]:
    """Why TradingView could not post to `url` (empty: it can)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [Problem.NOT_A_URL]
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        return [Problem.NOT_A_URL]
    problems: list[Problem] = []
    if parts.scheme != "https":
        problems.append(Problem.NOT_HTTPS)
    if _local(host):
        problems.append(Problem.LOCAL_HOST)
    if port is not None and port not in TRADINGVIEW_PORTS:
        problems.append(Problem.PORT)
    return problems


def _local(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host
    return not address.is_global


_ENGLISH: Final = {
    Problem.NOT_HTTPS: "it is not https",
    Problem.LOCAL_HOST: "its host cannot be reached from the internet "
    "(loopback, private or local address)",
    Problem.PORT: "its port is not 80 or 443",
    Problem.NOT_A_URL: "it is not an http(s) URL",
}


def describe(problems: list[Problem]) -> str:
    """The problems in English, for the operator's log."""
    return "; ".join(_ENGLISH[p] for p in problems)

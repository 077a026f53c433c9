"""Who sent a request: the peer, or behind a trusted reverse proxy, its forwarded client."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str | None) -> IPAddress | None:
    """An address from a peer name or an X-Forwarded-For entry (`[v6]:port`, `v4:port` too)."""
    if not text:
        return None
    value = text.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d
    return address


def in_networks(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def client_address(
    peer: str | None,
    forwarded_for: Sequence[str],
    trusted_proxies: Sequence[IPNetwork],
) -> IPAddress | None:
    """The client's address, or None when it cannot be told.

    X-Forwarded-For is honoured only when the peer itself is a trusted proxy; then the
    right-most entry that is not a trusted proxy is the client (entries to its left were
    written by the client and prove nothing).
    """
    address = parse_ip(peer)
    if address is None or not in_networks(address, trusted_proxies):
        return address
    entries = [item for header in forwarded_for for item in header.split(",") if item.strip()]
    for entry in reversed(entries):
        hop = parse_ip(entry)
        if hop is None:
            return None
        address = hop
        if not in_networks(hop, trusted_proxies):
            return hop
    return address

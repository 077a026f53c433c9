"""client_address: the peer, or the forwarded client only behind a trusted proxy."""

from __future__ import annotations

import ipaddress

import pytest

from webhook_server.client_ip import client_address, parse_ip

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.2.3.4", "1.2.3.4"), (" 1.2.3.4:5678 ", "1.2.3.4"), ("[2001:db8::1]:443", "2001:db8::1"),
     ("2001:db8::1", "2001:db8::1"), ("::ffff:1.2.3.4", "1.2.3.4"), ("", None), (None, None),
     ("unknown", None), ("[2001:db8::1", None), ("1.2.3.4.5", None)],
)
def test_parse_ip(text: str | None, expected: str | None) -> None:
    address = parse_ip(text)
    assert (None if address is None else str(address)) == expected


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # not a proxy: header ignored
        ("10.1.1.1", [], "10.1.1.1"),
        ("10.1.1.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.1.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # client-written left part
        ("10.1.1.1", ["198.51.100.1, 10.2.2.2"], "198.51.100.1"),  # a chain of our proxies
        ("10.1.1.1", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # repeated headers
        ("10.1.1.1", ["10.3.3.3, 10.2.2.2"], "10.3.3.3"),  # only proxies: the left-most
        ("10.1.1.1", ["nonsense"], None),
        ("::1", ["[2001:db8::5]:1234"], "2001:db8::5"),
        (None, ["198.51.100.1"], None),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str | None) -> None:
    address = client_address(peer, forwarded, PROXIES)
    assert (None if address is None else str(address)) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert str(client_address("10.1.1.1", ["198.51.100.1"], ())) == "10.1.1.1"


def test_unknown_token_budget_refills_and_known_unknowns_expire() -> None:
    from webhook_server.token_guard import UnknownTokens

    now = [0.0]
    guard = UnknownTokens(ttl=10.0, burst=2, per_second=0.5, clock=lambda: now[0])
    assert guard.may_look_up("t1", "1.2.3.4")
    guard.missed("t1", "1.2.3.4")
    assert not guard.may_look_up("t1", "5.6.7.8"), "remembered for every sender"
    guard.missed("t2", "1.2.3.4")
    assert not guard.may_look_up("t3", "1.2.3.4"), "budget spent"
    assert guard.may_look_up("t3", "5.6.7.8"), "another sender is not charged"
    now[0] = 2.0  # one lookup refilled
    assert guard.may_look_up("t3", "1.2.3.4")
    now[0] = 11.0
    assert guard.may_look_up("t1", "5.6.7.8"), "forgotten after the ttl"

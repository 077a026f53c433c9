"""Wrong webhook tokens answered without a database query each.

A token found unknown is remembered for a while (a stale TradingView alert posting to
a rotated URL again and again costs one lookup). And each client address may cause at
most `burst` lookups that find nothing, refilled at `per_second`: beyond that, a token
that is not already known to be valid is answered "not found" at once — the same answer
as for any unknown path, so nothing hints that tokens exist. Lookups that find a user
cost the client nothing, so a busy sender of real alerts (TradingView's few addresses)
is never slowed. Bounded memory on both sides.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class UnknownTokens:
    def __init__(
        self,
        *,
        ttl: float = 60.0,
        max_tokens: int = 10_000,
        burst: int = 20,
        per_second: float = 0.5,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_tokens = max_tokens
        self._burst = burst
        self._rate = per_second
        self._max_clients = max_clients
        self._clock = clock
        self._unknown: OrderedDict[str, float] = OrderedDict()  # token hash → expiry
        self._clients: OrderedDict[str, _Bucket] = OrderedDict()

    def __repr__(self) -> str:
        return f"UnknownTokens(tokens={len(self._unknown)}, clients={len(self._clients)})"

    def may_look_up(self, digest: str, client: str) -> bool:
        """False: answer "not found" without asking the database."""
        now = self._clock()
        expiry = self._unknown.get(digest)
        if expiry is not None:
            if expiry > now:
                return False
            del self._unknown[digest]
        bucket = self._clients.get(client)
        return bucket is None or self._refill(bucket, now) >= 1.0

    def missed(self, digest: str, client: str) -> None:
        """The lookup found no user: remember the token, charge the client."""
        now = self._clock()
        self._unknown[digest] = now + self._ttl
        self._unknown.move_to_end(digest)
        while len(self._unknown) > self._max_tokens:
            self._unknown.popitem(last=False)
        bucket = self._clients.get(client)
        if bucket is None:
            bucket = self._clients[client] = _Bucket(float(self._burst), now)
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
        self._refill(bucket, now)
        bucket.tokens = max(bucket.tokens - 1.0, 0.0)
        self._clients.move_to_end(client)

    def _refill(self, bucket: _Bucket, now: float) -> float:
        bucket.tokens = min(float(self._burst), bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        return bucket.tokens

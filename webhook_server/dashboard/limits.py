"""Sign-in attempts counted per client IP and per target user, in the database so
every instance counts together."""

from __future__ import annotations

import hashlib

from storage.repositories.ratebuckets import RateBuckets
from webhook_server.dashboard.http import ApiError
from webhook_server.dashboard.ports import Limit


def bucket(kind: str, key: str) -> str:
    """Bucket names carry no address or name in clear (the table is not a visitor log)."""
    return f"{kind}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


async def spend(buckets: RateBuckets, kind: str, key: str, limit: Limit) -> None:
    """One attempt of `kind` for `key`; 429 with `retry_after` once over the limit."""
    hit = await buckets.hit(bucket(kind, key), limit.hits, limit.window)
    if not hit.allowed:
        raise ApiError(
            429, "rate_limited",
            f"too many attempts: try again in {hit.retry_after} s",
            retry_after=hit.retry_after,
        )

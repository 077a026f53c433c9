"""Which instance acts on an alert (SPEC section 12): the owner of the lease of the KIS
key the alert's order would use — for an alert to several accounts (SPEC section 16),
each account's row goes to the owner of that account's key.

One process on SQLite acts on everything itself. With several instances on
PostgreSQL, the instance that receives an alert takes it at once when it holds the
key's lease, and otherwise stores it for the owner, which a signal wakes. An alert for
an account without validated keys (or for no account) belongs to no key: any instance
refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.coordination import lease_of

__all__ = ["LOCAL", "Claim", "Route", "lease_of"]


@dataclass(frozen=True, slots=True)
class Claim:
    """Under which lease (None: no key) and epoch this instance took an alert."""

    lease: str | None
    epoch: int


@dataclass(frozen=True, slots=True)
class Route:
    """Where a newly accepted alert (one account's row of it) goes: the lease of its
    key, and the claim when this instance takes it at once (None: its owner elsewhere
    is signalled); the account it is for (None: the user has no account `name`)."""

    lease: str | None
    claim: Claim | None
    account_id: int | None = None
    name: str = ""
    shared: bool = True  # False: one process, which records no claims


LOCAL = Route(None, Claim(None, 0), shared=False)  # one process: everything is acted on here


"""Which instance acts on an alert (SPEC section 12): the owner of the lease of the KIS
key the alert's order would use.

One process on SQLite acts on everything itself. With several instances on
PostgreSQL, the instance that receives an alert takes it at once when it holds the
key's lease, and otherwise stores it for the owner, which a signal wakes. An alert of
a user without validated keys belongs to no key: any instance refuses it.
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
    """Where a newly accepted alert goes: the lease of its key, and the claim when this
    instance takes it at once (None: its owner elsewhere is signalled)."""

    lease: str | None
    claim: Claim | None


LOCAL = Route(None, Claim(None, 0))  # one process: everything is acted on here


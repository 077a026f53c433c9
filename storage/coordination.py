"""Who does what among the instances sharing one database (SPEC section 12).

`LeaseKeeper` keeps this instance's leases: it renews them, notices when one is lost,
takes free or expired leases up to a fair share of the wanted ones (so keys spread
over the live instances), gives the surplus back when instances join, and on drain
hands everything over at once. Work for a lease starts when it is gained and stops
when it is being lost (`LeaseWork`), so at most one instance does it at a time.

A lease counts as held locally only until `ttl - margin` seconds after the start of
its last successful renewal (the process's monotonic clock): past that, another
instance may take it at any moment, so nothing is sent under it (`valid`).

`SoleInstance` is the same interface for one process on SQLite: it holds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from storage.crypto import hash_token
from storage.records import KeySetRecord
from storage.repositories.leases import Instances, Leases
from storage.signals import Signals

log = logging.getLogger(__name__)

LEASES_CHANNEL: Final = "leases"
TELEGRAM_LEASE: Final = "telegram"
HANDOVER: Final = "handover:"  # signal payload: the holder of this lease, give it back
PIN_S: Final = 120.0  # a lease taken on request stays at least this long
SINGLETONS: Final = (TELEGRAM_LEASE,)
STOP_TIMEOUT_S: Final = 10.0


def kis_lease(app_key_hash: str, environment: str) -> str:
    """The lease of one KIS app key in one environment."""
    return f"kis:{app_key_hash}:{environment}"


def lease_of(keys: KeySetRecord | None) -> str | None:
    """The lease of the KIS key a user's orders and fill notices go through now (the
    validated keys of their active environment), or None."""
    if keys is None or not keys.validated:
        return None
    return kis_lease(hash_token(keys.app_key.reveal()), keys.environment.value)


def instance_id(name: str) -> str:
    """A name for this run of an instance: the same name restarted is a new holder."""
    return f"{name}/{secrets.token_hex(4)}"


def default_instance_name(port: int) -> str:
    return f"{socket.gethostname()}:{port}"


class LeaseWork(Protocol):
    """Work that belongs to lease holders (the pipeline and watchers for KIS keys, the
    bot's polling and outbox for `telegram`)."""

    async def gained(self, name: str, epoch: int) -> None:
        """Start working under `name` (return quickly: start tasks, do not run them)."""
        ...

    async def losing(self, name: str) -> None:
        """Stop working under `name`: after this returns nothing more is done under it."""
        ...


@dataclass(frozen=True, slots=True)
class Held:
    name: str
    epoch: int
    valid_until: float  # monotonic


class Coordinator(Protocol):
    instance_id: str
    instance_name: str

    def held(self, name: str) -> Held | None:
        """The lease if this instance holds it and may still act under it."""
        ...

    def valid(self, name: str, epoch: int) -> bool:
        """True while this instance holds `name` under `epoch` and may still act."""
        ...

    def add_work(self, prefix: str, work: LeaseWork) -> None: ...

    def held_names(self) -> list[str]:
        """The leases this instance holds now (metrics, status)."""
        ...

    async def rebalance(self) -> None:
        """Look at the wanted leases again now (keys added or removed)."""
        ...

    async def take_now(self, name: str, within: float) -> Held | None:
        """Hold `name` here now: taken if free, asked of its holder otherwise (it hands
        it over between two pieces of work); None if that takes longer than `within`."""
        ...

    async def start(self) -> None: ...

    async def drain(self) -> None:
        """Stop all lease work and hand the leases over at once."""
        ...

    async def close(self) -> None: ...


WantedLeases = Callable[[], Awaitable[set[str]]]


class SoleInstance:
    """One process owns everything (SQLite): every lease is held, forever, epoch 0."""

    def __init__(self, name: str = "moahook") -> None:
        self.instance_name = name
        self.instance_id = name
        self._work: list[tuple[str, LeaseWork]] = []

    def __repr__(self) -> str:
        return f"SoleInstance({self.instance_name!r})"

    def held(self, name: str) -> Held | None:
        return Held(name, 0, math.inf)

    def valid(self, name: str, epoch: int) -> bool:
        return True

    def add_work(self, prefix: str, work: LeaseWork) -> None:
        self._work.append((prefix, work))

    def held_names(self) -> list[str]:
        return list(SINGLETONS)

    async def rebalance(self) -> None:
        """Nothing to balance."""

    async def take_now(self, name: str, within: float) -> Held | None:
        return self.held(name)

    async def start(self) -> None:
        """The singletons' work starts at once (KIS keys need no lease here)."""
        for prefix, work in self._work:
            if prefix in SINGLETONS:
                await work.gained(prefix, 0)

    async def drain(self) -> None:
        for prefix, work in reversed(self._work):
            if prefix in SINGLETONS:
                await work.losing(prefix)
        self._work.clear()

    async def close(self) -> None:
        await self.drain()


class LeaseKeeper:
    def __init__(
        self,
        *,
        leases: Leases,
        instances: Instances,
        signals: Signals,
        name: str,
        wanted: WantedLeases,
        ttl: float = 10.0,
        singletons: tuple[str, ...] = SINGLETONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 1.0:
            raise ValueError("lease ttl must be at least 1 second")
        self.instance_name = name
        self.instance_id = instance_id(name)
        self._leases = leases
        self._instances = instances
        self._signals = signals
        self._wanted = wanted
        self._ttl = ttl
        self._margin = min(1.0, ttl / 5)
        # Every second (or faster for short leases): a dead holder's leases are taken
        # within about a second of their expiry, and renewals stay far from it.
        self._renew_every = min(1.0, ttl / 3)
        self._singletons = singletons
        self._clock = clock
        self._held: dict[str, Held] = {}
        self._work: list[tuple[str, LeaseWork]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._draining = False
        self._drained = False
        self._stopping: set[str] = set()
        self._leaving: set[str] = set()  # being handed over (in the background)
        self._handing: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()  # one balancing pass at a time
        self._handovers: set[str] = set()  # asked for by another instance
        # Taken on request (a key being checked before it is in use): kept until then.
        self._pinned: dict[str, float] = {}
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"LeaseKeeper({self.instance_id!r}, held={sorted(self._held)})"

    # -- what the rest of the service asks ---------------------------------------------

    def held(self, name: str) -> Held | None:
        lease = self._held.get(name)
        if lease is None or lease.valid_until <= self._clock():
            return None
        return lease

    def valid(self, name: str, epoch: int) -> bool:
        lease = self.held(name)
        return lease is not None and lease.epoch == epoch

    def held_names(self) -> list[str]:
        return sorted(name for name in self._held if self.held(name) is not None)

    def add_work(self, prefix: str, work: LeaseWork) -> None:
        self._work.append((prefix, work))

    async def rebalance(self) -> None:
        self._wake.set()

    async def take_now(self, name: str, within: float) -> Held | None:
        held = self.held(name)
        if held is not None:
            return held
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        asked = False
        while True:
            async with self._lock:
                if not self._draining and await self._take(name):
                    self._pinned[name] = self._clock() + PIN_S
                    return self.held(name)
            if not asked:  # its holder gives it back when it hears this
                await self._signals.notify(LEASES_CHANNEL, f"{HANDOVER}{name}")
                asked = True
            if loop.time() >= deadline:
                return None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(0.2, deadline - loop.time()))

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self._instances.register(self.instance_id, self.instance_name)
        self._signals.listen(LEASES_CHANNEL, self._heard)
        self._signals.on_reconnect(self._wake.set)
        await self._pass()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lease-keeper")

    async def drain(self) -> None:
        """Hand every lease over at once (SIGTERM): the work under each stops (what is in
        flight finishes, still under the lease, which is renewed meanwhile), then all
        are released and the others told. The instance stays registered as draining
        until `close`."""
        if self._drained:
            return
        self._draining = True
        with contextlib.suppress(Exception):
            await self._instances.heartbeat(self.instance_id, draining=True)
        names = list(self._held)
        await asyncio.gather(*(self._stop(name) for name in names))
        async with self._lock:
            for name in names:
                self._held.pop(name, None)
            try:
                await self._leases.release(self.instance_id, names)
                await self._signals.notify(LEASES_CHANNEL, "released")
            except Exception as exc:  # the database is gone: the leases simply expire
                log.warning("could not hand the leases over (%s); they expire in %.0f s",
                            type(exc).__name__, self._ttl)
        self._drained = True

    async def close(self) -> None:
        if not self._drained:
            await self.drain()
        for task in [*([self._task] if self._task else []), *self._handing]:
            task.cancel()
        await asyncio.gather(*([self._task] if self._task else []), *self._handing,
                             return_exceptions=True)
        self._task = None
        with contextlib.suppress(Exception):
            await self._instances.remove(self.instance_id)

    def _heard(self, payload: str) -> None:
        if payload.startswith(HANDOVER):
            name = payload.removeprefix(HANDOVER)
            if name in self._held:
                self._handovers.add(name)
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._drained:
            delay = self._renew_every
            try:
                delay = await self._pass()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}"
                log.warning("leases: pass failed (%s)", type(exc).__name__)
                await self._expire_overdue()
                delay = min(self._renew_every, 1.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.05, delay))

    async def _pass(self) -> float:
        """Heartbeat, renew, take a fair share, give back a surplus. Returns how long
        until the next pass should run."""
        async with self._lock:
            started = self._clock()
            await self._instances.heartbeat(self.instance_id, draining=self._draining)
            renewed = await self._leases.renew(self.instance_id, self._ttl)
            valid_until = started + self._ttl - self._margin
            for name in list(self._held):
                if renewed.get(name) != self._held[name].epoch:
                    log.warning("lease %s was lost", _short(name))
                    self._held.pop(name, None)  # lost: nothing more is done under it
                    await self._stop(name)
            for name, epoch in renewed.items():
                if name in self._held:
                    self._held[name] = Held(name, epoch, valid_until)
                elif not self._draining:  # ours in the database only (a pass failed late)
                    await self._leases.release(self.instance_id, [name])
            if self._draining:  # renewing what is being handed over, nothing more
                return self._renew_every
            for name in sorted(self._handovers):
                self._handovers.discard(name)
                if name in self._held:
                    self._give_back(name)
            wanted = await self._wanted()
            live = max(1, len(await self._instances.live(within=self._ttl)))
            next_in = await self._balance(wanted, live)
            self.last_error = None
            return min(self._renew_every, next_in)

    async def _balance(self, wanted: set[str], live: int) -> float:
        keys = sorted(name for name in wanted if name not in self._singletons)
        share = math.ceil(len(keys) / live) if keys else 0
        mine = [name for name in self._held if name not in self._singletons]
        now = self._clock()
        for name in [n for n, until in self._pinned.items() if until <= now or n in wanted]:
            del self._pinned[name]
        # Leases no longer wanted (keys deleted) are given back at once.
        for name in [n for n in mine if n not in wanted and n not in self._pinned]:
            self._give_back(name)
        mine = [n for n in mine if (n in wanted or n in self._pinned) and n not in self._leaving]
        next_in = self._renew_every
        if len(mine) < share:
            taken = {lease.name for lease in await self._leases.holders(keys)}
            for name in keys:
                if len(mine) >= share:
                    break
                if name in self._held or name in taken:
                    continue
                if await self._take(name):
                    mine.append(name)
        elif len(mine) > share:
            # Instances joined: give back the surplus (the newest first, never one taken
            # on request), one per pass so the handovers stay orderly.
            surplus = [n for n in mine if n not in self._pinned]
            if surplus and not self._leaving:
                self._give_back(surplus[-1])
                next_in = min(next_in, 0.2)
        for name in self._singletons:
            if name in wanted and name not in self._held:
                await self._take(name)
        return next_in

    async def _take(self, name: str) -> bool:
        started = self._clock()
        epoch = await self._leases.acquire(name, self.instance_id, self._ttl)
        if epoch is None:
            return False
        self._held[name] = Held(name, epoch, started + self._ttl - self._margin)
        log.info("lease %s taken (epoch %d)", _short(name), epoch)
        for prefix, work in self._work:
            if name.startswith(prefix):
                try:
                    await work.gained(name, epoch)
                except Exception:
                    log.exception("starting the work of lease %s failed", _short(name))
        return True

    def _give_back(self, name: str) -> None:
        """Hand `name` over in the background: its work stops first (what is in flight
        finishes under the lease, which the passes keep renewing meanwhile), then it is
        released and the others told."""
        if name in self._leaving:
            return
        self._leaving.add(name)
        task = asyncio.get_running_loop().create_task(self._hand_over(name))
        self._handing.add(task)
        task.add_done_callback(self._handing.discard)

    async def _hand_over(self, name: str) -> None:
        try:
            await self._stop(name)
            async with self._lock:
                if self._held.pop(name, None) is not None:
                    await self._leases.release(self.instance_id, [name])
                    await self._signals.notify(LEASES_CHANNEL, "released")
                    log.info("lease %s handed over", _short(name))
        except Exception as exc:  # the database is gone: the lease simply expires
            log.warning("handing lease %s over failed (%s)", _short(name), type(exc).__name__)
        finally:
            self._leaving.discard(name)

    async def _stop(self, name: str) -> None:
        """The work under `name` stops; the caller forgets the lease (before this when
        it was lost, after this when it is handed over)."""
        if name in self._stopping:
            return
        self._stopping.add(name)
        try:
            await self._stop_work(name)
        finally:
            self._stopping.discard(name)

    async def _stop_work(self, name: str) -> None:
        for prefix, work in reversed(self._work):  # the reverse of how it started
            if name.startswith(prefix):
                try:
                    await asyncio.wait_for(work.losing(name), STOP_TIMEOUT_S)
                except Exception:
                    log.exception("stopping the work of lease %s failed", _short(name))

    async def _expire_overdue(self) -> None:
        """Without the database, leases cannot be renewed: once one is past its local
        validity another instance may hold it, so its work stops here."""
        now = self._clock()
        for name in [n for n, lease in self._held.items() if lease.valid_until <= now]:
            log.warning("lease %s ran out without renewal; stopping its work", _short(name))
            async with self._lock:
                self._held.pop(name, None)
                await self._stop(name)


def _short(name: str) -> str:
    """Lease names in logs: the key hash shortened (it names, it does not reveal)."""
    kind, _, rest = name.partition(":")
    if not rest:
        return name
    digest, _, env = rest.rpartition(":")
    return f"{kind}:{digest[:10]}…:{env}"

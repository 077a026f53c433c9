"""`Storage`: the database, the secret box and every repository, as one object."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from storage.crypto import SecretBox
from storage.db import Database
from storage.repositories import (
    Accounts,
    Activity,
    Alerts,
    Audit,
    Confirmations,
    Conversations,
    DayLimits,
    Fills,
    FillSessions,
    Instances,
    KeySets,
    Leases,
    Options,
    OrderCancels,
    Orders,
    Outbox,
    RateBuckets,
    ReservedOrders,
    SqlTokenStore,
    Totp,
    TwoFactor,
    Users,
    WebSessions,
)
from storage.repositories._sql import Clock
from storage.rotation import reencrypt_all
from storage.second_factor import SecondFactor
from storage.signals import LocalSignals, PgSignals, Signals
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, repr=False)
class Storage:
    db: Database
    box: SecretBox
    users: Users
    accounts: Accounts
    key_sets: KeySets
    tokens: SqlTokenStore
    alerts: Alerts
    orders: Orders
    fills: Fills
    outbox: Outbox
    two_factor: TwoFactor
    audit: Audit
    conversations: Conversations
    leases: Leases
    instances: Instances
    signals: Signals
    fill_sessions: FillSessions
    web_sessions: WebSessions
    rate_buckets: RateBuckets
    totp: Totp
    second_factor: SecondFactor
    # SPEC section 15
    options: Options
    limits: DayLimits
    confirmations: Confirmations
    cancels: OrderCancels
    reserved: ReservedOrders
    activity: Activity

    def __repr__(self) -> str:
        return f"Storage({self.db!r})"

    @classmethod
    def build(cls, db: Database, box: SecretBox, clock: Clock = utcnow) -> Storage:
        """Wires the repositories on an existing database (no migration)."""
        two_factor = TwoFactor(db, box.pepper, clock)
        totp = Totp(db, box, clock)
        signals: Signals = (
            PgSignals(db.engine.url.render_as_string(hide_password=False), schema=db.schema)
            if db.dialect == "postgresql"
            else LocalSignals()
        )
        return cls(
            db=db,
            box=box,
            users=Users(db, box, clock, signals),
            accounts=Accounts(db, clock, signals),
            key_sets=KeySets(db, box, clock, signals),
            tokens=SqlTokenStore(db, box),
            alerts=Alerts(db, clock, signals),
            orders=Orders(db, clock),
            fills=Fills(db, clock),
            outbox=Outbox(db, clock),
            two_factor=two_factor,
            audit=Audit(db, clock),
            conversations=Conversations(db, box, clock),
            leases=Leases(db, clock),
            instances=Instances(db, clock),
            signals=signals,
            fill_sessions=FillSessions(db, signals, clock),
            web_sessions=WebSessions(db, box.pepper, clock),
            rate_buckets=RateBuckets(db, clock),
            totp=totp,
            second_factor=SecondFactor(two_factor, totp),
            options=Options(db, clock),
            limits=DayLimits(db, clock),
            confirmations=Confirmations(db, clock),
            cancels=OrderCancels(db, clock),
            reserved=ReservedOrders(db, clock),
            activity=Activity(db, clock),
        )

    @classmethod
    async def open(
        cls,
        url: str,
        master_keys: Sequence[bytes],
        *,
        schema: str | None = None,
        clock: Clock = utcnow,
    ) -> Storage:
        """Connects, applies migrations and, when several keys are configured,
        re-encrypts old rows under the first one."""
        box = SecretBox(master_keys)
        db = Database.create(url, schema=schema)
        try:
            await db.migrate()
            if len(master_keys) > 1:
                await reencrypt_all(db, box)
        except BaseException:
            await db.dispose()
            raise
        return cls.build(db, box, clock)

    async def ping(self) -> bool:
        return await self.db.ping()

    @property
    def shared(self) -> bool:
        """True when several instances may share this database (PostgreSQL)."""
        return not self.db.is_sqlite

    async def close(self) -> None:
        await self.signals.close()
        await self.db.dispose()

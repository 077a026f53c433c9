"""Errors storage raises on purpose (messages never carry secrets)."""

from __future__ import annotations

import logging

from storage.crypto import DecryptionError, MasterKeyError


class StorageError(Exception):
    """Base for storage's own errors."""


class UnknownUser(StorageError, LookupError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"no user with id {user_id}")
        self.user_id = user_id


class OrderAlreadyExists(StorageError):
    """The alert already has its order: the database refuses a second one."""

    def __init__(self, alert_id: int, order_id: int | None = None) -> None:
        super().__init__(f"alert {alert_id} already has an order")
        self.alert_id = alert_id
        self.order_id = order_id


class LeaseLost(StorageError):
    """An order was not written: this instance no longer holds the lease of its KIS key
    (another instance took over, so it must not send)."""

    def __init__(self, lease: str) -> None:
        super().__init__("the lease of this order's KIS key is held elsewhere now")
        self.lease = lease


class DatabaseInUse(StorageError):
    """Another process serves this SQLite database (SQLite supports one instance)."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"another moahook serve is already using the SQLite database {path}; SQLite "
            "supports one instance at a time (stop the other one, or run several "
            "instances on PostgreSQL: docs/operator-guide.md)"
        )
        self.path = path


class DatabaseUnavailable(StorageError):
    """The database refused or never answered the connection (message: one line, the
    URL without its password)."""


class MigrationFailed(StorageError):
    """A schema migration failed; the database is left at the last revision that applied."""


def database_unreachable(exc: BaseException) -> bool:
    """The database could not be reached or the connection broke (an outage, a
    restart, a network split), as opposed to a bug: worth one line in the log, not a
    traceback, since whatever failed is retried."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and isinstance(
        cause, OSError | TimeoutError | ConnectionError
    )


def log_failure(log: logging.Logger, exc: BaseException, what: str, *args: object) -> None:
    """`what` failed: one warning line when the database is out of reach, the traceback
    otherwise."""
    if database_unreachable(exc):
        log.warning(what + " (the database is unreachable: %s)", *args, type(exc).__name__)
    else:
        log.error(what, *args, exc_info=exc)


__all__ = [
    "DatabaseInUse",
    "database_unreachable",
    "log_failure",
    "LeaseLost",
    "DatabaseUnavailable",
    "DecryptionError",
    "MasterKeyError",
    "MigrationFailed",
    "OrderAlreadyExists",
    "StorageError",
    "UnknownUser",
]

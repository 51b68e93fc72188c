"""The single place psycopg and pool errors become the store's own (``tenantdb.store.errors``).

Every error is raised ``from`` its cause, but its own message names only the operation and the
SQLSTATE: never the connection URL, a password, a query parameter or a decrypted value.
(Server messages can quote values, e.g. ``invalid input syntax for type integer: "..."``, so
they stay on the cause and out of our message.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
import psycopg.errors
import psycopg_pool

from tenantdb.store.errors import (
    StoreError,
    StoreIntegrityError,
    StoreTenantNotFoundError,
    StoreUnavailableError,
)

__all__ = ["translate_errors"]


# libpq's connection errors carry no SQLSTATE, and their text names the host, port, user and
# database. These fixed phrases say which kind of failure it was without repeating any of that.
_CONNECTION_FAILURES: Final = (
    ("password authentication failed", "authentication failed"),
    ("no pg_hba.conf entry", "the server does not accept this client (pg_hba.conf)"),
    ("does not exist", "the database or role does not exist"),
    ("is not permitted to log in", "the role may not log in"),
    ("is not currently accepting connections", "the database does not accept connections"),
    ("too many connections", "too many connections"),
    ("the database system is starting up", "the server is starting up"),
    ("the database system is shutting down", "the server is shutting down"),
    ("Connection refused", "connection refused"),
    ("timeout expired", "connection timed out"),
    ("could not translate host name", "the host name does not resolve"),
    ("failed to resolve host", "the host name does not resolve"),
    ("SSL", "TLS negotiation failed"),
)


def _describe(exc: psycopg.Error) -> str:
    # The class name and SQLSTATE identify the failure without quoting anything from it.
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate:
        return f"{type(exc).__name__} (SQLSTATE {sqlstate})"
    text = str(exc)
    for marker, phrase in _CONNECTION_FAILURES:
        if marker in text:
            return f"{type(exc).__name__}: {phrase}"
    return type(exc).__name__


@contextmanager
def translate_errors(operation: str) -> Iterator[None]:
    """Re-raise psycopg and pool errors inside the block as the store's own errors."""
    try:
        yield
    except StoreError:
        raise
    except psycopg_pool.PoolClosed as exc:
        # Not transient: the store was closed and will not reopen by itself.
        raise StoreError(f"metadata DB: {operation}: the store is closed") from exc
    except psycopg_pool.PoolTimeout as exc:
        raise StoreUnavailableError(
            f"metadata DB: {operation}: no connection available in time (the DB is down or "
            "overloaded, or refuses the credentials: see the pool's warnings)"
        ) from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        # Sim's environment tables reference its user and workspace rows.
        raise StoreTenantNotFoundError(
            f"metadata DB: {operation}: Sim has no such user or workspace "
            f"({_describe(exc)}, a foreign key violation)"
        ) from exc
    except psycopg.IntegrityError as exc:
        raise StoreIntegrityError(f"metadata DB: {operation}: {_describe(exc)}") from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        # OperationalError covers lost connections, admin shutdowns, serialisation failures and
        # deadlocks; InterfaceError a connection already closed under us. All are worth a retry.
        raise StoreUnavailableError(f"metadata DB: {operation}: {_describe(exc)}") from exc
    except psycopg.Error as exc:
        # Programming errors such as a missing table (migrations not run) or a data error.
        raise StoreError(f"metadata DB: {operation}: {_describe(exc)}") from exc

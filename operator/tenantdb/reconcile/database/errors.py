"""The outside systems' errors, turned into the two outcomes a reconcile can have
(``RetryLater`` / ``NeedsUserAction``) here and nowhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tenantdb.kube import KubeError, SecretConflictError
from tenantdb.neon.errors import (
    NeonAuthError,
    NeonClientError,
    NeonLimitError,
    NeonNotFoundError,
    NeonOperationFailedError,
    NeonTransientError,
)
from tenantdb.reconcile.errors import NeedsUserAction, RetryLater
from tenantdb.reconcile.reasons import Reason
from tenantdb.store.errors import (
    StoreError,
    StoreIntegrityError,
    StoreProjectClaimedError,
    StoreTenantNotFoundError,
)

__all__ = [
    "CONFLICT_REASONS",
    "CONFLICT_RETRY_SECONDS",
    "UNREADABLE_RETRY_SECONDS",
    "WARN_ONCE_REASONS",
    "outside_errors",
]

# A conflict waits for the other side to let go: retried, not failed.
CONFLICT_RETRY_SECONDS = 30.0
# Reasons that mean the resource cannot be used as written while they last (Ready=False), though
# nothing is broken: another resource holds the tenant, or the Secret is not ours.
CONFLICT_REASONS = frozenset(
    {Reason.CONFLICT, Reason.SECRET_CONFLICT, Reason.PROJECT_NOT_FOUND, Reason.USER_OWNED}
)
# Said with one Warning event when they begin (or change), not at every retry: a person must act.
WARN_ONCE_REASONS = CONFLICT_REASONS | {Reason.METADATA_UNREADABLE}
# Data a person must fix (a row the operator cannot read) is looked at again this rarely: a
# retry every 15 s cannot help and would fill the log.
UNREADABLE_RETRY_SECONDS = 3600.0


@asynccontextmanager
async def outside_errors(action: str) -> AsyncIterator[None]:
    """Turn the outside systems' errors into the two outcomes a reconcile can have."""
    try:
        yield
    except NeonLimitError as exc:
        raise NeedsUserAction(Reason.QUOTA_EXCEEDED, f"{action}: Neon refused: {exc}", delay=600) from exc
    except NeonAuthError as exc:
        raise RetryLater(
            Reason.NEON_UNAUTHORIZED, f"{action}: Neon rejected the operator's API key: {exc}", delay=300
        ) from exc
    except NeonNotFoundError as exc:
        raise RetryLater(
            Reason.PROJECT_MISSING, f"{action}: the Neon project is gone: {exc}", delay=5
        ) from exc
    except NeonClientError as exc:
        raise NeedsUserAction(
            Reason.NEON_REJECTED, f"{action}: Neon rejected the request: {exc}", delay=3600
        ) from exc
    except NeonOperationFailedError as exc:
        raise RetryLater(
            Reason.RECONCILE_ERROR, f"{action}: a Neon operation failed: {exc}", delay=60
        ) from exc
    except NeonTransientError as exc:
        delay = max(5.0, exc.retry_after or 15.0)
        raise RetryLater(
            Reason.RECONCILE_ERROR, f"{action}: Neon is unavailable: {exc}", delay=delay
        ) from exc
    except StoreTenantNotFoundError as exc:
        # Sim has no such user or workspace (yet, or any more): retrying every 15 s cannot help.
        raise RetryLater(
            Reason.TENANT_NOT_FOUND,
            f"{action}: Sim's database has no user or workspace with this resource's userId / "
            f"workspaceId (check the spec, or wait for Sim to create it): {exc}",
            delay=300,
        ) from exc
    except StoreProjectClaimedError as exc:
        raise RetryLater(
            Reason.CONFLICT,
            f"{action}: the Neon project is already held by another resource: left as it is",
            delay=CONFLICT_RETRY_SECONDS,
        ) from exc
    except StoreIntegrityError as exc:
        # Not an outage: the data contradicts what the operator can use. Left untouched, for a
        # person to fix; looked at again rarely.
        raise RetryLater(
            Reason.METADATA_UNREADABLE,
            f"{action}: the metadata DB holds data the operator cannot use (left as it is; fix it "
            f"and the operator picks it up within the hour, or at the resource's next change): {exc}",
            delay=UNREADABLE_RETRY_SECONDS,
        ) from exc
    except StoreError as exc:
        raise RetryLater(
            Reason.RECONCILE_ERROR, f"{action}: the metadata DB is unavailable: {exc}", delay=15
        ) from exc
    except SecretConflictError as exc:
        raise RetryLater(
            Reason.SECRET_CONFLICT,
            f"{action}: {exc}; the operator writes only Secrets it created for this resource "
            "(choose another spec.connectionSecret.name, or delete that Secret)",
            delay=CONFLICT_RETRY_SECONDS,
        ) from exc
    except KubeError as exc:
        raise RetryLater(
            Reason.RECONCILE_ERROR, f"{action}: the Kubernetes API failed: {exc}", delay=10
        ) from exc

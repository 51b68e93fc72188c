"""What a reconcile can end in, besides success. The handlers map these to kopf.

ReconcileError
 ├── RetryLater         transient: Neon, the metadata DB or the API server is unwell
 └── NeedsUserAction    permanent until the spec (or an account limit) changes
"""

from __future__ import annotations

from tenantdb.reconcile.reasons import Reason

__all__ = ["NeedsUserAction", "ReconcileError", "RetryLater"]


class ReconcileError(Exception):
    def __init__(self, reason: Reason, message: str, *, delay: float = 30.0) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.delay = delay


class RetryLater(ReconcileError):
    """Try again after ``delay`` seconds; nothing is wrong with the resource itself."""


class NeedsUserAction(ReconcileError):
    """The resource cannot be reconciled as written (e.g. unknown region, account limit).

    ``delay`` still applies: account limits can be raised without touching the resource.
    """

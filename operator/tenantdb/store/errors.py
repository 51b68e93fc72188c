"""The metadata store's one small exception tree.

```
StoreError                    anything the metadata store could not do
├── StoreUnavailableError     the DB is unreachable, the pool is exhausted, a connection broke,
│                             a serialisation failure: transient, retry later
└── StoreIntegrityError       the data contradicts the request: a constraint was violated, a
                              stored value cannot be decrypted or is in the other env-var format
```

Free of psycopg, so that callers (the reconcilers) can catch these without importing the
driver; ``tenantdb.store.translate`` maps psycopg's errors onto them.
"""

from __future__ import annotations

__all__ = ["StoreError", "StoreIntegrityError", "StoreUnavailableError"]


class StoreError(Exception):
    """The metadata store could not do what was asked."""


class StoreUnavailableError(StoreError):
    """The metadata DB cannot be reached right now; retrying later may succeed."""


class StoreIntegrityError(StoreError):
    """The metadata DB's data contradicts the request; retrying the same request will not help."""

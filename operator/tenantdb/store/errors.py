"""The metadata store's one small exception tree.

```
StoreError                    anything the metadata store could not do
├── StoreUnavailableError     the DB is unreachable, the pool is exhausted, a connection broke,
│                             a serialisation failure: transient, retry later
├── StoreSchemaError          the metadata DB lacks tables the operator needs (Sim's migrations
│                             not run, and no standalone tables asked for)
└── StoreIntegrityError       the data contradicts the request: a constraint was violated, a
    │                         stored value cannot be decrypted or is not a JSON object
    ├── StoreTenantNotFoundError  Sim has no such user or workspace (a foreign key violation)
    └── StoreProjectClaimedError  another resource's claim already holds that Neon project
```

Free of psycopg, so that callers (the reconcilers) can catch these without importing the
driver; ``tenantdb.store.translate`` maps psycopg's errors onto them.
"""

from __future__ import annotations

__all__ = [
    "StoreError",
    "StoreIntegrityError",
    "StoreProjectClaimedError",
    "StoreSchemaError",
    "StoreTenantNotFoundError",
    "StoreUnavailableError",
]


class StoreError(Exception):
    """The metadata store could not do what was asked."""


class StoreUnavailableError(StoreError):
    """The metadata DB cannot be reached right now; retrying later may succeed."""


class StoreIntegrityError(StoreError):
    """The metadata DB's data contradicts the request; retrying the same request will not help."""


class StoreTenantNotFoundError(StoreIntegrityError):
    """Sim has no such user or workspace: a fact about the tenant, not an outage of the DB."""


class StoreSchemaError(StoreError):
    """The metadata DB lacks tables the operator needs; the message says what to do."""


class StoreProjectClaimedError(StoreIntegrityError):
    """Another resource's claim already holds the Neon project: a project has one holder."""

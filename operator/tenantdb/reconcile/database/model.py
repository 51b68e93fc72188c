"""The database path's vocabulary: the resource, what it needs from outside, and the values
its phases hand each other."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, MutableMapping, MutableSet
from typing import Any, Protocol

from tenantdb.api import DatabaseSpec, DatabaseStatus
from tenantdb.config import Settings
from tenantdb.kube import OwnerReference
from tenantdb.reconcile.naming import DatabaseIdentity
from tenantdb.reconcile.ports import Metadata, NeonLike, SecretWriter
from tenantdb.store.claims import Claimant

__all__ = [
    "Cipher",
    "Claimed",
    "DatabaseDeps",
    "DatabaseObject",
    "decrypted",
    "role_name",
    "secret_name",
]


class Cipher(Protocol):
    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, stored: str) -> str: ...


def decrypted(cipher: Cipher, stored: str | None) -> str | None:
    """A stored secret in the clear; ``None`` when absent, or written with another key or
    tampered with (it is then treated as absent: written again, never trusted)."""
    if not stored:
        return None
    try:
        return cipher.decrypt(stored)
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class DatabaseDeps:
    neon: NeonLike
    secrets: SecretWriter
    metadata: Metadata
    cipher: Cipher
    settings: Settings
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    # The budget's current word on a user, read under the project's lock just before the
    # endpoint is patched: the budget loop may have switched it since this reconcile began,
    # and an answer decided earlier would undo its suspend (or its resume). ``None``: not
    # known yet (after a restart): the endpoint's ``disabled`` flag is left as it is.
    is_suspended: Callable[[str], bool | None] = lambda _user_id: False
    # Resource uid -> Neon project id, as recorded by this process (see Runtime.projects).
    known_projects: MutableMapping[str, str] = dataclasses.field(default_factory=dict)
    # Resource uids whose create this process has sent but not yet recorded.
    create_attempts: MutableSet[str] = dataclasses.field(default_factory=set)
    # Resource uid -> project its tenant claim is pinned to, as this process saw it. A pinned
    # claim is only ever released by the holder's own delete, so a resync need not ask again
    # (one metadata DB round trip per resource per resync saved; a restart asks once).
    pinned_claims: MutableMapping[str, str] = dataclasses.field(default_factory=dict)
    # When this process last sent each unrecorded create (status.createAttemptedAt is the
    # durable copy; kopf may hand a reconcile a body from before that status write).
    create_sent_at: MutableMapping[str, datetime.datetime] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DatabaseObject:
    """A database resource as the handlers decoded it."""

    identity: DatabaseIdentity
    generation: int
    spec: DatabaseSpec
    status: DatabaseStatus
    owner: OwnerReference
    # metadata.creationTimestamp: the oldest resource of a tenant holds its claim.
    created_at: datetime.datetime = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )


def role_name(spec: DatabaseSpec) -> str:
    return spec.role_name or f"{spec.database_name}_owner"


def secret_name(obj: DatabaseObject) -> str:
    return obj.spec.connection_secret.name or obj.identity.default_secret_name()


@dataclasses.dataclass(frozen=True)
class Claimed:
    """What is this resource's before anything is created: the tenant (its claim, held or as
    this process saw it pinned) and the connection Secret's name (the Secret's state, ``None``
    when there is none yet)."""

    claim: Claimant
    secret: Any

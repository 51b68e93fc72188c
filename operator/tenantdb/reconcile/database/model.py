"""The database path's vocabulary: the resource, what it needs from outside, and the values
its phases hand each other.

claim → ``Claimed``; observe → an ``Observation`` (``Found``, ``Adopted``, ``Recovered``,
``Replaced``, ``Absent``); create → ``Created``; so the project is ``Owned``; update →
``Updated``; rotate → ``Rotated`` (when the password was reset). Each is frozen: a phase's
outcome is what it returns, not what it left in locals.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, MutableMapping, MutableSet, Sequence
from typing import Any, Protocol, TypeAlias

from tenantdb.api import DatabaseSpec, DatabaseStatus
from tenantdb.billing import TierDefinition
from tenantdb.config import Settings, Tier
from tenantdb.kube import OwnerReference
from tenantdb.reconcile.errors import NeedsUserAction
from tenantdb.reconcile.naming import DatabaseIdentity
from tenantdb.reconcile.ports import Metadata, NeonLike, SecretWriter
from tenantdb.reconcile.projects import our_name
from tenantdb.reconcile.tiers import OwnCompute, SettingsWanted, desired_settings
from tenantdb.store.claims import Claimant

__all__ = [
    "Absent",
    "Adopted",
    "Cipher",
    "Claimed",
    "Created",
    "DatabaseDeps",
    "DatabaseObject",
    "Found",
    "Observation",
    "Owned",
    "Plan",
    "Recovered",
    "Replaced",
    "Rotated",
    "RotationRecord",
    "TakenOver",
    "Updated",
    "decrypted",
    "own_compute",
    "role_name",
    "secret_name",
    "wanted_settings",
]


# A tier of the settings: only a limit, so a database keeps its spec's or the base settings.
_SETTINGS_ONLY = TierDefinition(name=Tier.FREE.value)


# --- The resource, and what it needs from outside -------------------------------------------------
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
    # The user's DatabaseTier (what the spec leaves out comes from it); ``None``: the tier the
    # user's budget names does not exist, and what it would give holds as last applied.
    user_tier: Callable[[str], TierDefinition | None] = lambda _user_id: _SETTINGS_ONLY
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
    # Resource uid -> the last password rotation this process finished (status is the durable
    # copy; kopf may hand a reconcile a body from before that status write, and that body must
    # not rotate again).
    rotations: MutableMapping[str, RotationRecord] = dataclasses.field(default_factory=dict)


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
    # The annotation tenantdb.io/rotate-credentials: a value not yet handled asks for a rotation.
    rotate_request: str | None = None


class Cipher(Protocol):
    """Encrypts with the operator's current key, decrypts with it or a previous one
    (``tenantdb.crypto.KeyRing``)."""

    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, stored: str) -> str: ...
    # Sealed with the current key: a value only a previous key opens is written again.
    def is_current(self, stored: str) -> bool: ...


def decrypted(cipher: Cipher, stored: str | None) -> str | None:
    """A stored secret in the clear; ``None`` when absent, or written with another key or
    tampered with (it is then treated as absent: written again, never trusted)."""
    if not stored:
        return None
    try:
        return cipher.decrypt(stored)
    except ValueError:
        return None


# --- What a reconcile aims at ---------------------------------------------------------------------
def role_name(spec: DatabaseSpec) -> str:
    return spec.role_name or f"{spec.database_name}_owner"


def secret_name(obj: DatabaseObject) -> str:
    return obj.spec.connection_secret.name or obj.identity.default_secret_name()


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a reconcile aims at, derived once from the resource and the settings."""

    # The name is the proof of ownership: derived, never read back from status.
    name: str
    region: str
    pg_version: int
    # The database and role the connection string names: the spec's, except for a project
    # taken over (spec.projectId), whose own may differ (``take_over`` resolves them once and
    # status records them).
    database_name: str
    role_name: str
    secret_name: str
    # The compute and project settings on Neon: the spec's, else the user's tier's.
    wanted: SettingsWanted

    @classmethod
    def of(
        cls, obj: DatabaseObject, settings: Settings, tier: TierDefinition | None = _SETTINGS_ONLY
    ) -> Plan:
        status, spec = obj.status, obj.spec
        taken_over = spec.project_id is not None and status.project_id == spec.project_id
        return cls(
            name=our_name(settings, obj.identity),
            region=status.region or spec.region or settings.neon_default_region,
            pg_version=status.pg_version or spec.pg_version or settings.neon_default_pg_version,
            database_name=(taken_over and status.database_name) or spec.database_name,
            role_name=(taken_over and status.role_name) or role_name(spec),
            secret_name=secret_name(obj),
            wanted=wanted_settings(obj, tier),
        )


def own_compute(spec: DatabaseSpec) -> OwnCompute:
    return OwnCompute.of(spec.autoscaling, spec.suspend_timeout_seconds)


def wanted_settings(obj: DatabaseObject, tier: TierDefinition | None) -> SettingsWanted:
    """The database's settings on Neon given its user's ``tier`` (``None``: it does not exist)."""
    return desired_settings(own_compute(obj.spec), tier, held=SettingsWanted.from_status(obj.status.applied))


# --- What the phases hand each other --------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Claimed:
    """What is this resource's before anything is created: the tenant (its claim, held or as
    this process saw it pinned) and the connection Secret's name (the Secret's state, ``None``
    when there is none yet)."""

    claim: Claimant
    secret: Any
    # The tenant's metadata row as the claim found it (``None``: none yet).
    row: Any = None


# --- What observe found ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Found:
    """The project status (or this process) names exists, and carries this resource's name."""

    project_id: str


@dataclasses.dataclass(frozen=True)
class Adopted:
    """A live project carrying this resource's name, found by the search: status named none
    (a create whose answer was lost, a status wiped), or one that does not exist."""

    project_id: str


@dataclasses.dataclass(frozen=True)
class Recovered:
    """The project status names was deleted outside the operator, and is recovered (with its
    data) from Neon's recovery window."""

    project_id: str


@dataclasses.dataclass(frozen=True)
class Replaced:
    """The project status names was deleted outside the operator, no live project carries our
    name, and it is not recovered: a new, empty one is to be created."""

    deleted_id: str


@dataclasses.dataclass(frozen=True)
class Absent:
    """No project carries this resource's name. ``searched``: Neon was asked (a create may
    have been sent before); else none was ever sent, so there was nothing to look for."""

    searched: bool


Observation: TypeAlias = Found | Adopted | Recovered | Replaced | Absent


@dataclasses.dataclass(frozen=True)
class Created:
    """The project this reconcile created, with Neon's answer: the operations to wait for,
    the endpoint, the branch and the connection URIs."""

    project_id: str
    answer: Any


@dataclasses.dataclass(frozen=True)
class TakenOver:
    """The existing project spec.projectId names, now this resource's (renamed to its name),
    with the database and role its connection string names."""

    project_id: str
    database_name: str
    role_name: str
    # The read-write endpoint, when the take-over read it (to find the branch): update's read saved.
    endpoint: Any = None


@dataclasses.dataclass(frozen=True)
class Rotated:
    """The role's password was reset: ``uri`` (and ``pooled_uri``, when the Secret holds one) is
    the connection string with the new password, which publish writes in place of every cached
    one; it holds once Neon's ``operations`` finish (the old one until then)."""

    uri: str = dataclasses.field(repr=False)
    pooled_uri: str | None = dataclasses.field(repr=False)
    operations: Sequence[Any]
    # Its start as recorded in status (``credentialsRotationStartedAt``).
    started_at: str
    # The annotation value this rotation answers (None: there was never one).
    handled: str | None


@dataclasses.dataclass(frozen=True)
class RotationRecord:
    """A rotation this process finished: the start it recorded (``status.credentialsRotationStartedAt``,
    exactly as written: that rotation is over), when it ended, and the annotation value it answered."""

    started_at: str
    rotated_at: datetime.datetime
    handled: str | None


# This resource's project, however the reconcile came by it.
Owned: TypeAlias = Found | Adopted | Recovered | Created | TakenOver


@dataclasses.dataclass(frozen=True)
class Updated:
    """The compute endpoint as update left it."""

    endpoint: Any
    branch_id: str
    suspended: bool  # disabled for the user's budget
    # A settings change Neon refused: reported in Synced; the database still works.
    refused: NeedsUserAction | None
    # The settings now on Neon (``None``: a change was refused; the record of before stands).
    applied: SettingsWanted | None = None

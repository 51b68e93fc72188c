"""Every reason the operator gives on an Event or a condition, spelled once.

A ``StrEnum`` (as kopf's ``Reason(str, Enum)``, to prevent typos): a member is the string
itself, so it goes into Events, conditions and ``ReconcileError.reason`` as it is, and
formats as its plain value (``f"{Reason.CONFLICT}"`` is ``Conflict``). The values are
public: Argo CD health checks (``manifests/argocd/health``), alerts, tests and people running
``kubectl get events`` read them. Never change one; add a member instead.

Condition *types* (Ready, Synced, BudgetExceeded) are another vocabulary:
``reconcile.conditions``.
"""

from __future__ import annotations

import enum

__all__ = ["Reason"]


@enum.unique
class Reason(enum.StrEnum):
    # A database's Ready condition, and the Events that announce its changes.
    CREATING = "Creating"
    AVAILABLE = "Available"
    READY = "Ready"
    BUDGET_EXCEEDED = "BudgetExceeded"  # a database suspended, or a DatabaseBudget gone over
    RESUMED = "Resumed"
    DELETING = "Deleting"

    # A database's Synced condition.
    RECONCILE_SUCCESS = "ReconcileSuccess"
    RECONCILE_ERROR = "ReconcileError"

    # What the outside systems answered (``database.errors.outside_errors``).
    QUOTA_EXCEEDED = "QuotaExceeded"
    NEON_REJECTED = "NeonRejected"
    NEON_UNAUTHORIZED = "NeonUnauthorized"
    PROJECT_MISSING = "ProjectMissing"
    TENANT_NOT_FOUND = "TenantNotFound"
    # A row or env var the operator cannot read (not a JSON object, say): a data problem for a
    # person to fix, not an outage; the row is never touched.
    METADATA_UNREADABLE = "MetadataUnreadable"

    # Conflicts: the resource waits, nothing is created or overwritten.
    CONFLICT = "Conflict"  # another resource holds the tenant, its row or its env var
    SECRET_CONFLICT = "SecretConflict"
    # The tenant's row records a database the user brought (ownership_type other than
    # 'platform'): nothing is created, published or removed for it.
    USER_OWNED = "UserOwned"

    # Which Neon project is this resource's.
    PROJECT_CREATED = "ProjectCreated"
    ADOPTED = "Adopted"
    PROJECT_NOT_FOUND = "ProjectNotFound"  # spec.projectId names no project of the organisation
    CREATE_PENDING = "CreatePending"
    PROJECT_MISMATCH = "ProjectMismatch"
    PROJECT_DELETED = "ProjectDeleted"  # deleted outside the operator, or by its finalizer
    PROJECT_RECOVERED = "ProjectRecovered"
    PROJECT_RECREATED = "ProjectRecreated"

    # The NeonOrganization pool (reconcile/organizations).
    NO_ORGANIZATION = "NoOrganization"  # no organisation takes new tenants: each full, cordoned or down
    ORGANIZATION_UNAVAILABLE = "OrganizationUnavailable"  # the tenant's organisation's key is rejected

    # The connection string and the compute settings.
    SECRET_WRITTEN = "SecretWritten"
    SECRET_UPDATED = "SecretUpdated"
    SECRET_RESTORED = "SecretRestored"
    ENV_VAR_WRITTEN = "EnvVarWritten"
    PASSWORD_RESET = "PasswordReset"  # a project taken over whose password Neon cannot reveal
    # The password rotated (annotation tenantdb.io/rotate-credentials, or its age) and the new
    # connection string published everywhere.
    CREDENTIALS_ROTATED = "CredentialsRotated"
    SETTINGS_UPDATED = "SettingsUpdated"

    # The finalizer.
    PROJECT_RETAINED = "ProjectRetained"
    PROJECT_ORPHANED = "ProjectOrphaned"
    DELETE_FAILED = "DeleteFailed"
    CLEANED = "Cleaned"

    # The handlers: a spec the CRD schema should have refused, a status that could not be written.
    INVALID_SPEC = "InvalidSpec"
    STATUS_WRITE_FAILED = "StatusWriteFailed"

    # A DatabaseBudget: its Events, and its Synced and BudgetExceeded conditions.
    BUDGET_RESUMED = "BudgetResumed"
    TIER_CHANGED = "TierChanged"
    TIER_NOT_FOUND = "TierNotFound"  # a budget naming a DatabaseTier that does not exist
    SYNCED = "Synced"
    CONFIGURED = "Configured"
    NOT_SYNCED_YET = "NotSyncedYet"
    OVER_LIMIT = "OverLimit"
    WITHIN_LIMIT = "WithinLimit"

    # A DatabaseTier's Ready: every database of its users follows it, or not yet.
    ROLLED_OUT = "RolledOut"
    ROLLING_OUT = "RollingOut"

    # The Sim sync leaves a resource it did not make alone.
    NOT_MANAGED_BY_SIM_SYNC = "NotManagedBySimSync"
    # The Sim sync read a Sim plan that no tier claims (the user gets the default tier).
    UNCLAIMED_SIM_PLAN = "UnclaimedSimPlan"

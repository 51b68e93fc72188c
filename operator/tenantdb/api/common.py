"""Types shared by the kinds: conditions, phases, the connection Secret, autoscaling."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError
from pydantic.alias_generators import to_camel

__all__ = [
    "ID_PATTERN",
    "SUSPEND_TIMEOUT_RULE",
    "TIER_NAME_MAX_LENGTH",
    "TIER_NAME_PATTERN",
    "AutoscalingSpec",
    "Condition",
    "ConditionStatus",
    "ConnectionSecretSpec",
    "DeletionPolicy",
    "Phase",
    "Resource",
    "immutable",
    "neon_suspend_timeout",
]

# Ids as Sim Studio makes them (nanoid / uuid text): letters, digits, '_' and '-'.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
ID_MAX_LENGTH = 128
# A tier's name (a DatabaseTier's, as a budget's spec.tier names it): a DNS-1123 label.
TIER_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
TIER_NAME_MAX_LENGTH = 63
# Neon's suspend_timeout_seconds: -1 (never), 0 (Neon's default) or 60..604800.
SUSPEND_TIMEOUT_RULE: JsonValue = {
    "rule": "self == -1 || self == 0 || self >= 60",
    "message": "suspendTimeoutSeconds must be -1 (never), 0 (Neon's default) or at least 60 (Neon's minimum)",
}


def neon_suspend_timeout(value: int | None) -> int | None:
    """A suspend timeout Neon accepts (``SUSPEND_TIMEOUT_RULE``, for models read without the CRD)."""
    if value is not None and 0 < value < 60:
        raise ValueError("must be -1 (never), 0 (Neon's default) or at least 60 (Neon's minimum)")
    return value


def immutable(field: str) -> dict[str, Any]:
    """A CEL transition rule that rejects any change of the field once set."""
    return {"x-kubernetes-validations": [{"rule": "self == oldSelf", "message": f"{field} is immutable"}]}


class Resource(BaseModel):
    """Base of every model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as Kubernetes stores it: camelCase keys, no unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def to_patch(self) -> dict[str, Any]:
        """A JSON merge patch of the fields set on this object, and only those.

        A field set to ``None`` on purpose is sent as ``null`` (the key is removed); fields
        never set are left out (left as they are); inside a value nothing is ``null``.
        """
        wire = self.to_wire()
        patch: dict[str, Any] = {}
        for name in self.model_fields_set:
            alias = type(self).model_fields[name].alias or name
            patch[alias] = wire.get(alias)
        return patch

    @classmethod
    def decode(cls, raw: Mapping[str, Any]) -> Self:
        """An object as stored (a status), typed, without failing on what does not fit.

        Status is only a record: anyone with status rights may write it, and an API server
        without the CRD's schema checks nothing. A field, or one item of a list field (a
        condition), that does not validate is left out, as if absent, one at a time.
        """
        data = dict(raw)
        while True:
            try:
                return cls.model_validate(data)
            except ValidationError as exc:
                loc = exc.errors()[0]["loc"]
            if not loc or str(loc[0]) not in data:
                return cls()  # not a field's fault: nothing of it can be trusted
            key = str(loc[0])
            items = data[key]
            if len(loc) > 1 and isinstance(loc[1], int) and isinstance(items, list):
                data[key] = [item for index, item in enumerate(items) if index != loc[1]]
            else:
                del data[key]

    def merged(self, patch: Self) -> Self:
        """This object with the fields set on ``patch`` applied, as a merge patch applies them."""
        return self.model_copy(update={name: getattr(patch, name) for name in patch.model_fields_set})


class DeletionPolicy(enum.StrEnum):
    DELETE = "Delete"
    RETAIN = "Retain"


class Phase(enum.StrEnum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    READY = "Ready"
    SUSPENDED = "Suspended"
    FAILED = "Failed"
    DELETING = "Deleting"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Resource):
    """A condition as the Kubernetes API conventions define it (metav1.Condition)."""

    type: str = Field(description="Type of the condition: Ready, Synced or BudgetExceeded.", max_length=316)
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="CamelCase reason for the last transition, for machines.",
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        max_length=1024,
    )
    message: str = Field(
        default="", description="Human-readable detail of the last transition.", max_length=32768
    )
    last_transition_time: str = Field(
        description="When the status last changed (RFC 3339).", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was set for."
    )


class ConnectionSecretSpec(Resource):
    """Where the connection string goes."""

    name: str | None = Field(
        default=None,
        description="Name of the Secret (same namespace). Default: '<resource name>-connection'.",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
    )
    include_plaintext: bool = Field(
        default=False,
        description="Also write DATABASE_URL, DATABASE_URL_POOLED and the libpq PG* keys in plain "
        "text (so a pod can envFrom the Secret). Off by default: only DATABASE_URL_ENCRYPTED.",
    )


class AutoscalingSpec(Resource):
    """Compute size limits in Neon compute units (1 CU = 1 vCPU, 4 GB RAM)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # has(): the API server also checks the rule against the CRD's own default for
                # the field (``{}``), before nested defaults apply; without it the whole CRD
                # is refused ("no such key: minCu"). Stored objects always have both.
                {
                    "rule": "!has(self.minCu) || !has(self.maxCu) || self.minCu <= self.maxCu",
                    "message": "minCu must not exceed maxCu",
                }
            ]
        }
    )

    min_cu: float = Field(
        default=0.25, ge=0.25, le=56, multiple_of=0.25, description="Smallest compute size, in CU."
    )
    max_cu: float = Field(
        default=0.25, ge=0.25, le=56, multiple_of=0.25, description="Largest compute size, in CU."
    )

"""Tiers as the operator holds them (``TierCatalog``), and what a database's settings on Neon
should be given its spec and its user's tier (``desired_settings``). Pure: no I/O.

A database takes from its user's tier what its own spec leaves out:

- compute size (``autoscaling``) and idle timeout (``suspendTimeoutSeconds``): the spec's
  when it names them, else the tier's, else the operator's base (0.25 CU, Neon's default
  timeout): what every database had before tiers were objects;
- history retention and the hard-stop quotas (``settings.quota``, except
  ``compute_time_seconds``, which the budget loop owns): the tier's; none when it names none
  (a retention the tier no longer names is left as it is, a quota it no longer names is lifted).

A user whose tier does not exist (``TierNotFound`` on the budget) *holds*: each setting the
tier would give stays as last applied, so a typo changes nothing on Neon.
"""

from __future__ import annotations

import dataclasses
import logging
import types
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import pydantic

from tenantdb.api import AutoscalingSpec, TierQuotas
from tenantdb.api.databases import AppliedSettings
from tenantdb.api.tier import DatabaseTierSpec
from tenantdb.billing import TierDefinition, TierPolicy
from tenantdb.config import Settings

__all__ = [
    "BASE_MAX_CU",
    "BASE_MIN_CU",
    "BASE_SUSPEND_TIMEOUT_SECONDS",
    "OwnCompute",
    "SettingsWanted",
    "TierCatalog",
    "definition_of",
    "desired_settings",
    "project_changes",
    "tier_definition",
]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

# What a database gets when neither its spec nor its tier says (the CRD's defaults before).
BASE_MIN_CU = 0.25
BASE_MAX_CU = 0.25
BASE_SUSPEND_TIMEOUT_SECONDS = 0
# The budget loop's, from what is left of the user's limit; never written by the database path.
_BUDGET_QUOTA = "compute_time_seconds"


def definition_of(name: str, spec: DatabaseTierSpec, *, generation: int | None = None) -> TierDefinition:
    """A DatabaseTier object as the billing rules and the database path read it."""
    quotas = spec.quotas.model_dump(exclude_none=True) if spec.quotas is not None else {}
    return TierDefinition(
        name=name,
        limit_cents=spec.limit_cents,
        min_cu=spec.autoscaling.min_cu if spec.autoscaling is not None else None,
        max_cu=spec.autoscaling.max_cu if spec.autoscaling is not None else None,
        suspend_timeout_seconds=spec.suspend_timeout_seconds,
        history_retention_seconds=spec.history_retention_seconds,
        quotas=quotas,
        sim_plans=tuple(spec.sim_plans),
        generation=generation,
    )


def tier_definition(obj: Mapping[str, Any]) -> TierDefinition | None:
    """A DatabaseTier object as listed or watched; ``None`` when its spec does not validate (the
    CRD's schema refuses such a spec: only an API server without it lets one through)."""
    metadata = obj.get("metadata") or {}
    try:
        spec = DatabaseTierSpec.model_validate(obj.get("spec") or {})
    except pydantic.ValidationError:
        _log.warning("DatabaseTier %s: its spec is not valid, left out", metadata.get("name"))
        return None
    generation = metadata.get("generation")
    return definition_of(str(metadata.get("name")), spec, generation=int(generation) if generation else None)


class TierCatalog:
    """The DatabaseTier objects the handlers registered (and the start-up list), and the
    policy they make with the settings (rebuilt only when a tier changes)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._objects: dict[str, TierDefinition] = {}
        self._policy: TierPolicy | None = None

    def __len__(self) -> int:
        return len(self._objects)

    def put(self, definition: TierDefinition) -> TierDefinition | None:
        """Register a tier; returns the one it replaces."""
        previous = self._objects.get(definition.name)
        self._objects[definition.name] = definition
        if previous != definition:
            self._policy = None
        return previous

    def drop(self, name: str) -> TierDefinition | None:
        previous = self._objects.pop(name, None)
        if previous is not None:
            self._policy = None
        return previous

    def replace_all(self, definitions: Iterable[TierDefinition]) -> None:
        """What a list of every DatabaseTier found (the start-up list)."""
        self._objects = {definition.name: definition for definition in definitions}
        self._policy = None

    @property
    def policy(self) -> TierPolicy:
        if self._policy is None:
            self._policy = TierPolicy.from_settings(self._settings, self._objects.values())
        return self._policy

    def objects(self) -> list[TierDefinition]:
        return list(self._objects.values())


@dataclasses.dataclass(frozen=True)
class OwnCompute:
    """What a database's own spec says of its compute (``None``: left to its tier)."""

    min_cu: float | None = None
    max_cu: float | None = None
    suspend_timeout_seconds: int | None = None

    @classmethod
    def of(cls, autoscaling: AutoscalingSpec | None, suspend_timeout_seconds: int | None) -> OwnCompute:
        return cls(
            min_cu=autoscaling.min_cu if autoscaling is not None else None,
            max_cu=autoscaling.max_cu if autoscaling is not None else None,
            suspend_timeout_seconds=suspend_timeout_seconds,
        )


@dataclasses.dataclass(frozen=True)
class SettingsWanted:
    """A database's settings on Neon (wanted, or as last applied) and the tier they follow."""

    tier: str | None
    min_cu: float
    max_cu: float
    suspend_timeout_seconds: int
    history_retention_seconds: int | None  # None: Neon's own, never set by the operator
    quotas: Mapping[str, int] = dataclasses.field(default_factory=dict)  # settings.quota (0: none)

    def __post_init__(self) -> None:
        # A zero quota is no quota (Neon's rule): left out, so two ways to say none compare equal.
        quotas = {name: value for name, value in self.quotas.items() if value}
        object.__setattr__(self, "quotas", types.MappingProxyType(quotas))

    @property
    def compute(self) -> tuple[float, float, int]:
        return (self.min_cu, self.max_cu, self.suspend_timeout_seconds)

    def to_status(self) -> AppliedSettings:
        return AppliedSettings(
            tier=self.tier,
            min_cu=self.min_cu,
            max_cu=self.max_cu,
            suspend_timeout_seconds=self.suspend_timeout_seconds,
            history_retention_seconds=self.history_retention_seconds,
            quotas=TierQuotas.model_validate(dict(self.quotas)) if self.quotas else None,
        )

    @classmethod
    def from_status(cls, applied: AppliedSettings | None) -> SettingsWanted | None:
        """What a status records as applied; ``None`` when it records nothing complete."""
        if applied is None or applied.min_cu is None or applied.max_cu is None:
            return None
        quotas = applied.quotas.model_dump(exclude_none=True) if applied.quotas is not None else {}
        return cls(
            tier=applied.tier,
            min_cu=applied.min_cu,
            max_cu=applied.max_cu,
            suspend_timeout_seconds=applied.suspend_timeout_seconds or 0,
            history_retention_seconds=applied.history_retention_seconds,
            quotas=quotas,
        )


def desired_settings(
    own: OwnCompute, tier: TierDefinition | None, *, held: SettingsWanted | None = None
) -> SettingsWanted:
    """What the database's settings should be: its own, else its tier's, else the base.

    ``tier`` ``None``: the user's tier does not exist; what the tier would give is ``held``
    (as last applied; the base for a database that never had any)."""
    if tier is None:
        return SettingsWanted(
            tier=held.tier if held is not None else None,
            min_cu=_first(own.min_cu, held.min_cu if held else None, BASE_MIN_CU),
            max_cu=_first(own.max_cu, held.max_cu if held else None, BASE_MAX_CU),
            suspend_timeout_seconds=_first(
                own.suspend_timeout_seconds,
                held.suspend_timeout_seconds if held else None,
                BASE_SUSPEND_TIMEOUT_SECONDS,
            ),
            history_retention_seconds=held.history_retention_seconds if held else None,
            quotas=held.quotas if held else {},
        )
    quotas = {name: value for name, value in tier.quotas.items() if name != _BUDGET_QUOTA and value}
    return SettingsWanted(
        tier=tier.name,
        min_cu=_first(own.min_cu, tier.min_cu, BASE_MIN_CU),
        max_cu=_first(own.max_cu, tier.max_cu, BASE_MAX_CU),
        suspend_timeout_seconds=_first(
            own.suspend_timeout_seconds, tier.suspend_timeout_seconds, BASE_SUSPEND_TIMEOUT_SECONDS
        ),
        history_retention_seconds=tier.history_retention_seconds,
        quotas=quotas,
    )


def project_changes(
    wanted: SettingsWanted, applied: SettingsWanted | None
) -> tuple[int | None, dict[str, int]]:
    """The project-level settings to send for ``wanted`` over what is ``applied``: the history
    retention (``None``: nothing to send) and the quotas (Neon's names; 0 lifts one)."""
    before_quotas = applied.quotas if applied is not None else {}
    quotas: dict[str, int] = {}
    for name in sorted(set(wanted.quotas) | set(before_quotas)):
        value = wanted.quotas.get(name, 0)
        if value != before_quotas.get(name, 0):
            quotas[name] = value
    retention = wanted.history_retention_seconds
    before_retention = applied.history_retention_seconds if applied is not None else None
    return (retention if retention is not None and retention != before_retention else None), quotas


def _first(*values: _T | None) -> _T:
    for value in values:
        if value is not None:
            return value
    raise ValueError("no value")  # pragma: no cover - the last value is always given

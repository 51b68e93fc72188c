"""The organisations of the pool, their Neon clients, and their status.

``refresh`` (once a minute, by the operator's loop): reads the NeonOrganization objects and
their keys, builds one Neon client per organisation (its own key, its own rate limiter: two
organisations never share a budget), checks each key (``GET /auth`` and ``GET
/users/me/organizations``: two calls per organisation per refresh, none per tenant), counts
the tenants placed in each (the metadata DB's ``tenantdb_tenant_organization``) and writes
each status: projects held, room left, calls in the last minute, Ready.

``choose`` applies the placement rule (see ``placement``) to what the pool knows; ``reserve``
counts a placement at once, so that a burst of signups between two refreshes does not pour
into one organisation past its ``maxProjects``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import pydantic

from tenantdb.api.organization import NeonOrganizationSpec
from tenantdb.neon import NeonAuthError, NeonError
from tenantdb.reconcile.organizations.placement import Candidate, choose

__all__ = ["Member", "OrganizationClient", "OrganizationPool", "OrganizationSource"]

logger = logging.getLogger(__name__)


class OrganizationSource(Protocol):
    """What the pool reads and writes in Kubernetes (``tenantdb.kube.KubeClient`` does it)."""

    async def list_organizations(self) -> list[Mapping[str, Any]]: ...
    async def read_secret(self, *, namespace: str, name: str) -> dict[str, str] | None: ...
    async def patch_organization_status(self, *, name: str, status: Mapping[str, Any]) -> None: ...


class OrganizationClient(Protocol):
    """What the pool needs of an organisation's Neon client (``tenantdb.neon.NeonClient``)."""

    async def validate(self) -> object: ...
    async def aclose(self) -> None: ...
    def calls_last_minute(self) -> int: ...


C = TypeVar("C", bound=OrganizationClient)
TenantCounter = Callable[[], Awaitable[dict[str, int]]]


@dataclasses.dataclass
class Member(Generic[C]):
    """One organisation as the pool knows it."""

    name: str
    spec: NeonOrganizationSpec
    client: C | None
    key_digest: str = ""
    ready: bool = False
    reason: str = "NotChecked"
    message: str = ""
    held: int = 0
    full: bool = False
    ready_since: str = ""

    def candidate(self) -> Candidate:
        return Candidate(
            name=self.name,
            held=self.held,
            max_projects=self.spec.max_projects,
            ready=self.ready and self.client is not None,
            cordoned=self.spec.cordoned,
            full=self.full,
        )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class OrganizationPool(Generic[C]):
    def __init__(
        self,
        *,
        source: OrganizationSource,
        count_tenants: TenantCounter,
        make_client: Callable[[NeonOrganizationSpec, str], C],
        clock: Callable[[], datetime.datetime] = _now,
    ) -> None:
        self._source = source
        self._count_tenants = count_tenants
        self._make_client = make_client
        self._clock = clock
        self.members: dict[str, Member[C]] = {}
        # Placements counted since the refresh in progress read the table: its count may miss
        # them (read before they were written), so they are added to it, not lost.
        self._reserved_since_count: collections.Counter[str] = collections.Counter()

    # -- what placement asks ---------------------------------------------------------------
    @property
    def in_use(self) -> bool:
        """Whether any NeonOrganization is defined (none: the implicit single organisation)."""
        return bool(self.members)

    def clients(self) -> dict[str, C]:
        """Each organisation's client (those whose key could be read)."""
        return {name: m.client for name, m in self.members.items() if m.client is not None}

    def rejected(self, name: str) -> str | None:
        """Why the organisation's key does not work now (None: it works, or is not known)."""
        member = self.members.get(name)
        if member is None or member.ready or member.reason == "NotChecked":
            return None
        return member.message or member.reason

    def keeps_placed(self, name: str) -> bool:
        """Whether a tenant placed here and not created yet still goes here: the organisation
        is defined, its key works and Neon has not refused it for its project limit."""
        member = self.members.get(name)
        return member is not None and member.client is not None and member.ready and not member.full

    def choose(self) -> str | None:
        chosen = choose(member.candidate() for member in self.members.values())
        return chosen.name if chosen is not None else None

    def take(self) -> str | None:
        """``choose`` and ``reserve`` at once (no await between): concurrent placements of a
        burst each see the ones before them, and spread by the rule."""
        chosen = self.choose()
        if chosen is not None:
            self.reserve(chosen)
        return chosen

    def release(self, name: str) -> None:
        """A reservation not used after all (the tenant was recorded elsewhere first)."""
        if (member := self.members.get(name)) is not None and member.held > 0:
            member.held -= 1
            if self._reserved_since_count[name] > 0:
                self._reserved_since_count[name] -= 1

    def reserve(self, name: str) -> None:
        if (member := self.members.get(name)) is not None:
            member.held += 1
            self._reserved_since_count[name] += 1

    def client(self, name: str) -> C | None:
        member = self.members.get(name)
        return member.client if member is not None else None

    def mark_full(self, name: str) -> None:
        """Neon refused a create for the organisation's project limit: no more tenants there."""
        if (member := self.members.get(name)) is not None:
            member.full = True

    def mark_rejected(self, name: str, message: str) -> None:
        """Neon refused the organisation's key (revoked): not Ready until the next check passes."""
        if (member := self.members.get(name)) is not None:
            member.ready, member.reason, member.message = False, "KeyRejected", message

    # -- the refresh -----------------------------------------------------------------------
    async def refresh(self) -> None:
        seen: set[str] = set()
        self._reserved_since_count.clear()
        counts = await self._count_tenants()
        for item in await self._source.list_organizations():
            name = str(item.get("metadata", {}).get("name", ""))
            if not name:
                continue
            seen.add(name)
            member = await self._refresh_one(name, item)
            # Over by the placements that were written before the count was read, at worst:
            # the safe side, set right by the next refresh.
            member.held = counts.get(name, 0) + self._reserved_since_count[name]
            await self._source.patch_organization_status(name=name, status=self.status_of(member, item))
        for gone in set(self.members) - seen:
            member = self.members.pop(gone)
            if member.client is not None:
                await member.client.aclose()

    async def close(self) -> None:
        """Close every organisation's client."""
        members, self.members = self.members, {}
        for member in members.values():
            if member.client is not None:
                await member.client.aclose()

    async def _refresh_one(self, name: str, item: Mapping[str, Any]) -> Member[C]:
        try:
            spec = NeonOrganizationSpec.model_validate(item.get("spec") or {})
        except pydantic.ValidationError:
            member = self.members.setdefault(name, Member[C](name=name, spec=_EMPTY_SPEC, client=None))
            member.ready, member.reason, member.message = False, "InvalidSpec", "the spec does not validate"
            return member
        member = self.members.setdefault(name, Member[C](name=name, spec=spec, client=None))
        ref = spec.api_key_secret_ref
        secret = await self._source.read_secret(namespace=ref.namespace, name=ref.name)
        key = (secret or {}).get(ref.key, "")
        if not key:
            member.ready, member.reason = False, "KeyMissing"
            member.message = f"Secret {ref.namespace}/{ref.name} has no key {ref.key}"
            return member
        # Never the key itself kept or compared in the clear: a digest tells a rotation.
        digest = hashlib.sha256(f"{key}\0{spec.model_dump_json()}".encode()).hexdigest()
        if member.client is None or digest != member.key_digest:
            if member.client is not None:
                await member.client.aclose()
            member.client, member.key_digest, member.full = self._make_client(spec, key), digest, False
        member.spec = spec
        try:
            await member.client.validate()
        except NeonAuthError as exc:
            member.ready, member.reason, member.message = False, "KeyRejected", exc.message
        except NeonError as exc:
            # Neon unreachable: the last word stands (a blip does not send signups elsewhere).
            logger.warning("could not check the key of organisation %s: %s", name, type(exc).__name__)
        else:
            if not member.ready:
                member.ready_since = _stamp(self._clock())
            member.ready, member.reason, member.message = True, "KeyWorks", ""
        return member

    def status_of(self, member: Member[C], item: Mapping[str, Any]) -> dict[str, Any]:
        room = member.candidate().room
        now = _stamp(self._clock())
        message = member.message
        if member.ready and member.spec.cordoned:
            message = "cordoned: no new tenants"
        elif member.ready and room == 0:
            message = "full: no new tenants"
        return {
            "projects": member.held,
            "room": None if room == float("inf") else int(room),
            "callsPerMinute": member.client.calls_last_minute() if member.client is not None else 0,
            "full": member.full,
            "lastChecked": now,
            "observedGeneration": item.get("metadata", {}).get("generation"),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if member.ready else "False",
                    "reason": member.reason,
                    "message": message,
                    "lastTransitionTime": member.ready_since or now,
                }
            ],
        }


_EMPTY_SPEC = NeonOrganizationSpec.model_validate(
    {"organizationId": "invalid", "apiKeySecretRef": {"name": "invalid", "namespace": "invalid"}}
)

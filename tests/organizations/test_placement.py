"""The placement rule: an uncordoned, Ready organisation with room; the most room first."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tenantdb.api.organization import NeonOrganizationSpec
from tenantdb.reconcile.organizations import Candidate, choose
from tenantdb.reconcile.organizations.pool import Member, OrganizationPool


def test_the_organisation_with_most_room_takes_the_tenant() -> None:
    chosen = choose([Candidate("a", held=90, max_projects=100), Candidate("b", held=10, max_projects=50)])
    assert chosen is not None
    assert chosen.name == "b"


def test_cordoned_not_ready_and_full_organisations_take_no_tenants() -> None:
    pool = [
        Candidate("cordoned", held=0, max_projects=100, cordoned=True),
        Candidate("revoked", held=0, max_projects=100, ready=False),
        Candidate("refused", held=0, max_projects=100, full=True),
        Candidate("at-max", held=100, max_projects=100),
    ]
    assert choose(pool) is None
    chosen = choose([*pool, Candidate("open", held=99, max_projects=100)])
    assert chosen is not None
    assert chosen.name == "open"


def test_ties_go_to_fewest_tenants_then_the_name_so_replicas_agree() -> None:
    unlimited = [Candidate("b", held=5, max_projects=None), Candidate("a", held=5, max_projects=None)]
    chosen = choose(unlimited)
    assert chosen is not None
    assert chosen.name == "a"
    chosen = choose([*unlimited, Candidate("c", held=1, max_projects=None)])
    assert chosen is not None
    assert chosen.name == "c"


def test_a_burst_of_placements_spreads_by_the_rule_and_stops_at_max_projects() -> None:
    # Each placement is counted the moment it is chosen (take), before its record is written:
    # fifty signups at once do not all go to the organisation that had the most room first.
    pool: OrganizationPool[Any] = OrganizationPool(source=Any, count_tenants=Any, make_client=Any)
    for name in ("a", "b", "c"):
        spec = NeonOrganizationSpec.model_validate(
            {
                "organizationId": f"org-{name}",
                "apiKeySecretRef": {"name": name, "namespace": "t"},
                "maxProjects": 10,
            }
        )
        pool.members[name] = Member(name=name, spec=spec, client=object(), ready=True)
    taken = [pool.take() for _ in range(35)]
    assert Counter(taken) == {"a": 10, "b": 10, "c": 10, None: 5}
    assert taken[:6] == ["a", "b", "c", "a", "b", "c"]
    pool.release("a")  # recorded elsewhere first: its room comes back
    assert pool.take() == "a"

"""Status that tells the truth: a refused spec change on a working database, and a metadata DB
outage right after the project was made."""

from __future__ import annotations

from typing import Any

import psycopg

from tenantdb.testing.stack import LocalStack
from tests.factories import global_database


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


async def test_a_spec_change_neon_refuses_keeps_a_working_database_ready(operator: LocalStack) -> None:
    await operator.apply(global_database("user-refused", "rita"))
    await operator.wait_ready("GlobalDatabase", "user-refused")
    # A real API server refuses this through CEL; the emulator does not, and Neon answers 400.
    await operator.patch(
        "GlobalDatabase", "user-refused", {"spec": {"autoscaling": {"minCu": 1, "maxCu": 0.5}}}
    )
    obj = await operator.wait_for(
        "GlobalDatabase",
        "user-refused",
        lambda o: _condition(o, "Synced").get("status") == "False",
        what="Synced=False",
    )
    synced, ready = _condition(obj, "Synced"), _condition(obj, "Ready")
    assert synced["reason"] == "NeonRejected"
    assert "updating the compute endpoint settings" in synced["message"]
    assert ready["status"] == "True"
    assert obj is not None
    assert obj["status"]["phase"] == "Ready"


async def test_a_metadata_db_outage_after_the_create_keeps_the_true_phase(operator: LocalStack) -> None:
    assert operator.neon is not None
    operator.neon.options.create_latency_seconds = (3.0, 3.0)
    await operator.apply(global_database("user-outage", "otto"))
    await operator.wait_for(
        "GlobalDatabase",
        "user-outage",
        lambda o: ((o or {}).get("status") or {}).get("phase") == "Provisioning",
        what="Provisioning",
    )
    async with await psycopg.AsyncConnection.connect(operator.postgres.admin_url, autocommit=True) as conn:
        await conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
                psycopg.sql.Identifier(operator.metadata_db)
            )
        )
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (operator.metadata_db,),
        )
        try:
            obj = await operator.wait_for(
                "GlobalDatabase",
                "user-outage",
                lambda o: "metadata DB" in _condition(o, "Ready").get("message", ""),
                timeout=90,
                what="the outage in Ready",
            )
            assert obj is not None
            assert len(operator.neon.projects()) == 1  # the project exists...
            assert obj["status"]["phase"] != "Pending"  # ...so the phase does not say it does not
            assert _condition(obj, "Ready")["status"] == "False"
            assert _condition(obj, "Synced")["status"] == "False"
        finally:
            await conn.execute(
                psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                    psycopg.sql.Identifier(operator.metadata_db)
                )
            )
    await operator.wait_ready("GlobalDatabase", "user-outage", timeout=90)
    assert len(operator.neon.projects()) == 1

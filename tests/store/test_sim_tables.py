"""The Sim sync's reads of a Sim-shaped database: the tenants' metadata rows with the snapshot and
with the new rows, and GLOBAL_DB_URL put back only for the platform's databases."""

from __future__ import annotations

from tenantdb.crypto import EncryptionKey
from tenantdb.store import MetadataStore, TenantRow
from tenantdb.testing.sim_schema import SimRows

from .conftest import Database

URI = "postgresql://owner:secret@ep-cool-1.eu-central-1.aws.neon.tech/neondb?sslmode=require"


async def test_the_snapshot_and_the_new_rows_carry_the_tenants_metadata_rows(
    sim_store: MetadataStore, database: Database
) -> None:
    sim = SimRows(database.url)
    platform, own = await sim.register_user(), await sim.register_user()
    workspace = await sim.create_workspace(own)
    seen = await sim_store.sim_fingerprint()
    await sim.provisioned_in_app(platform, neon_project_id="cool-forest-1", database_name="app")
    await sim.provisioned_in_app(own, neon_project_id="theirs-1", ownership_type="user")
    await sim.provisioned_in_app(workspace, workspace=True, neon_project_id="theirs-2", ownership_type="byo")

    _, snapshot = await sim_store.sim_snapshot()
    assert snapshot.user_database_rows == {
        platform: TenantRow("platform", "cool-forest-1", "app"),
        own: TenantRow("user", "theirs-1", "neondb"),
    }
    assert snapshot.workspace_database_rows == {workspace: TenantRow("byo", "theirs-2", "neondb")}

    # A registration: only the new tenants' rows, by key.
    late = await sim.register_user()
    late_workspace = await sim.create_workspace(late)
    await sim.provisioned_in_app(late, neon_project_id="late-1")
    _, new, _, _ = await sim_store.sim_new_rows(
        users_after=seen.users_created, workspaces_after=seen.workspaces_created
    )
    assert new.user_database_rows == {late: TenantRow("platform", "late-1", "neondb")}
    assert new.workspace_database_rows == {}
    assert [w.id for w in new.workspaces] == [late_workspace]


async def test_global_db_url_is_put_back_for_the_platforms_database_never_for_the_users_own(
    sim_store: MetadataStore, database: Database, key: EncryptionKey
) -> None:
    sim = SimRows(database.url)
    platform, own = await sim.register_user(), await sim.register_user()
    for user_id, ownership in ((platform, "platform"), (own, "user")):
        await sim.provisioned_in_app(
            user_id,
            neon_project_id=f"p-{ownership}",
            ownership_type=ownership,
            connection_uri=key.encrypt(URI),
        )
        # Sim's personal save, with a page loaded before GLOBAL_DB_URL was there.
        await sim.save_personal_env(user_id, {"OPENAI_API_KEY": key.encrypt("sk-1")})

    restored, _ = await sim_store.restore_user_env_var(key="GLOBAL_DB_URL", since=None)
    assert restored == 1
    assert key.decrypt((await sim.personal_env(platform))["GLOBAL_DB_URL"]) == URI
    assert set(await sim.personal_env(own)) == {"OPENAI_API_KEY"}
